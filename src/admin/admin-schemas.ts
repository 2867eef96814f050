import { z } from 'zod';
import { creditsToMillicredits, InvalidAmountError, type AmountRules } from '../ledger/credits.ts';
import { schemas } from '../http/validate.ts';

/** zod schemas of the admin routes (API and forms share them). Unknown fields are refused. */

const blankToUndefined = (v: unknown) => (v === '' ? undefined : v);

/** Credits (JSON number or decimal string, ≤ 3 decimals) → integer millicredits. */
function Credits(rules: AmountRules) {
  return schemas.credits.transform((v, ctx) => {
    try {
      return creditsToMillicredits(v, rules);
    } catch (err) {
      if (!(err instanceof InvalidAmountError)) throw err;
      ctx.addIssue({ code: 'custom', message: err.message.replace(/^.* is not a valid amount of credits: /, 'must be a valid amount of credits: ') });
      return z.NEVER;
    }
  });
}

/** Why credits moved: shown to the user in their history. 1–500 characters, not blank. */
const Reason = z
  .string({ error: 'is required' })
  .max(500, 'must be at most 500 characters')
  .refine((s) => s.trim().length > 0, 'must not be empty')
  .refine((s) => !/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(s), 'must not contain control characters');

/** A future instant: an ISO 8601 date-time, or a date (`2026-12-31` = the end of that day, UTC). */
const FutureInstant = z.string().transform((s, ctx) => {
  let d: Date | undefined;
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
    const start = new Date(`${s}T00:00:00.000Z`);
    if (!Number.isNaN(start.getTime()) && start.toISOString().startsWith(s)) d = new Date(start.getTime() + 86_400_000);
  } else if (z.iso.datetime({ offset: true }).safeParse(s).success) {
    d = new Date(s);
  }
  if (!d) {
    ctx.addIssue({ code: 'custom', message: 'must be a date (YYYY-MM-DD) or an ISO 8601 date-time' });
    return z.NEVER;
  }
  if (d.getTime() <= Date.now()) {
    ctx.addIssue({ code: 'custom', message: 'must be in the future' });
    return z.NEVER;
  }
  return d;
});

/** `POST /api/admin/users/:id/grants`: credits > 0 (≤ 3 decimals), a reason, an optional future expiry. */
export const GrantBody = z
  .object({
    credits: Credits({}),
    reason: Reason,
    expiresAt: z.preprocess(blankToUndefined, FutureInstant.optional()),
  })
  .strict();
export type GrantBody = z.infer<typeof GrantBody>;

/** `POST /api/admin/users/:id/adjustments`: signed credits (not zero) and a reason. */
export const AdjustmentBody = z
  .object({
    /** Signed: positive adds credits, negative removes them (never below zero available). */
    credits: Credits({ allowNegative: true }),
    reason: Reason,
  })
  .strict();
export type AdjustmentBody = z.infer<typeof AdjustmentBody>;

/** `GET /api/admin/users?query=&cursor=&limit=`. */
export const UsersQuery = z
  .object({
    query: z.preprocess(blankToUndefined, z.string().max(200).optional()),
    cursor: z.preprocess(blankToUndefined, z.uuid('is not a cursor this API produced').optional()),
    limit: z.preprocess(blankToUndefined, schemas.limit.optional()),
  })
  .strict();
export type UsersQuery = z.infer<typeof UsersQuery>;

/** `:id` of a user (anything that is not a known user's UUID is a 404, decided by the service). */
export const UserParams = z.object({ id: z.string() }).strict();

/** `GET /api/admin/users/:id?cursor=&limit=` (pages of their transfers). */
export const UserDetailQuery = z
  .object({
    cursor: z.preprocess(blankToUndefined, schemas.cursor.optional()),
    limit: z.preprocess(blankToUndefined, schemas.limit.optional()),
  })
  .strict();

/**
 * A date (`2026-11-30`, the whole day in UTC) or an instant (ISO 8601 with a zone) bounding the
 * audit log; `end` makes a date mean the end of that day.
 */
function AuditInstant(end: boolean) {
  return z.preprocess(
    blankToUndefined,
    z
      .string()
      .max(40)
      .refine((v) => /^\d{4}-\d{2}-\d{2}$/.test(v) || /^\d{4}-\d{2}-\d{2}T[\d:.]+(Z|[+-]\d{2}:\d{2})$/.test(v), 'must be a date (YYYY-MM-DD) or an ISO 8601 time with a zone')
      .transform((v, ctx) => {
        const d = /^\d{4}-\d{2}-\d{2}$/.test(v) ? new Date(`${v}T00:00:00Z`) : new Date(v);
        if (Number.isNaN(d.getTime())) {
          ctx.addIssue({ code: 'custom', message: 'is not a valid date' });
          return z.NEVER;
        }
        return end && /^\d{4}-\d{2}-\d{2}$/.test(v) ? new Date(d.getTime() + 86_400_000) : d;
      })
      .optional(),
  );
}

/** `GET /api/admin/audit?actor=&action=&target=&from=&to=&cursor=&limit=` (`to` a date: through that day). */
export const AuditQuery = z
  .object({
    actor: z.preprocess(blankToUndefined, z.string().max(254).optional()),
    action: z.preprocess(blankToUndefined, z.string().max(100).optional()),
    target: z.preprocess(blankToUndefined, z.string().max(254).optional()),
    from: AuditInstant(false),
    to: AuditInstant(true),
    cursor: z.preprocess(blankToUndefined, schemas.cursor.optional()),
    limit: z.preprocess(blankToUndefined, schemas.limit.optional()),
  })
  .strict();
/** `GET /api/admin/audit/export?from=&to=` (JSONL; both optional; `to` a date: through that day). */
export const AuditExportQuery = z.object({ from: AuditInstant(false), to: AuditInstant(true), actor: AuditQuery.shape.actor, action: AuditQuery.shape.action, target: AuditQuery.shape.target }).strict();
export type AuditQuery = z.infer<typeof AuditQuery>;

/** `GET /api/admin/webhook-problems?cursor=&limit=`. */
export const WebhookProblemsQuery = z
  .object({
    cursor: z.preprocess(blankToUndefined, schemas.cursor.optional()),
    limit: z.preprocess(blankToUndefined, schemas.limit.optional()),
  })
  .strict();
