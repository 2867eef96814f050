import { z } from 'zod';
import { schemas } from '../http/validate.ts';
import { creditsToMillicredits, InvalidAmountError } from '../ledger/credits.ts';

/** zod schemas of spend controls (API and the settings form share them). Unknown fields are refused. */

/** A cap: credits > 0 (≤ 3 decimals) → millicredits; `null` (or a blank form field) removes it. */
const Cap = z.preprocess(
  (v) => (v === '' ? null : v),
  z.union([
    z.null(),
    schemas.credits.transform((v, ctx) => {
      try {
        return creditsToMillicredits(v);
      } catch (err) {
        if (!(err instanceof InvalidAmountError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message.replace(/^.* is not a valid amount of credits: /, 'must be a valid amount of credits: ') });
        return z.NEVER;
      }
    }),
  ]),
);

/** An IANA time zone name both Node and PostgreSQL know (`Europe/Berlin`, `UTC`). */
export const TimeZone = z
  .string()
  .max(64)
  .refine((tz) => {
    try {
      new Intl.DateTimeFormat('en', { timeZone: tz });
      return /^[A-Za-z_]+(\/[A-Za-z0-9_+-]+)*$/.test(tz);
    } catch {
      return false;
    }
  }, 'must be a time zone name such as Europe/Berlin or UTC');

/** Alert thresholds: whole percents 1–100, at most 10. A form sends them comma-separated. */
const Thresholds = z.preprocess(
  (v) => (typeof v === 'string' ? (v.trim() === '' ? [] : v.split(',').map((s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : s.trim()))) : v),
  z.array(z.number({ error: 'must be whole percents from 1 to 100' }).int('must be whole percents').min(1, 'must be at least 1').max(100, 'must be at most 100')).max(10, 'must list at most 10 thresholds'),
);

/** `PUT /api/credits/settings` and the settings form: each field optional; `null` removes a cap. */
export const SpendSettingsBody = z
  .object({
    dailyCap: Cap.optional(),
    monthlyCap: Cap.optional(),
    perJobMax: Cap.optional(),
    timeZone: TimeZone.optional(),
    alertThresholds: Thresholds.optional(),
  })
  .strict();
export type SpendSettingsBody = z.infer<typeof SpendSettingsBody>;

/** `PUT /api/admin/users/:id/limits`: hard caps; `null` removes one, an absent field stays. */
export const HardCapsBody = z
  .object({
    dailyCap: Cap.optional(),
    monthlyCap: Cap.optional(),
    perJobMax: Cap.optional(),
  })
  .strict();
export type HardCapsBody = z.infer<typeof HardCapsBody>;
