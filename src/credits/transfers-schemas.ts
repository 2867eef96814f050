import { z } from 'zod';
import { schemas } from '../http/validate.ts';
import { TRANSFER_KINDS, type TransferKind } from '../ledger/ledger-types.ts';

/** zod schemas of the statement routes (`/api/credits/transfers`, /account, admin views). */

/** An empty query parameter (`?kind=`, as a filter form sends it) counts as not given. */
const blankToUndefined = (v: unknown) => (v === '' ? undefined : v);

/**
 * A date (`2026-11-21`, a whole UTC day) or an ISO 8601 date-time with an offset. As the end of a
 * range (`edge: 'end'`), a date means the end of that day, so `to=2026-11-21` includes the 21st.
 */
function DateParam(edge: 'start' | 'end') {
  return z.string().transform((s, ctx) => {
    if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
      const d = new Date(`${s}T00:00:00.000Z`);
      if (!Number.isNaN(d.getTime()) && d.toISOString().startsWith(s)) {
        return edge === 'end' ? new Date(d.getTime() + 86_400_000) : d;
      }
    } else if (z.iso.datetime({ offset: true }).safeParse(s).success) {
      return new Date(s);
    }
    ctx.addIssue({ code: 'custom', message: 'must be a date (YYYY-MM-DD) or an ISO 8601 date-time' });
    return z.NEVER;
  });
}

/** `GET /api/credits/transfers?kind=&from=&to=&limit=&cursor=&format=` (and the /account filters). */
export const TransfersQuery = z
  .object({
    kind: z.preprocess(blankToUndefined, z.enum(TRANSFER_KINDS as [TransferKind, ...TransferKind[]]).optional()),
    from: z.preprocess(blankToUndefined, DateParam('start').optional()),
    to: z.preprocess(blankToUndefined, DateParam('end').optional()),
    limit: z.preprocess(blankToUndefined, schemas.limit.optional()),
    cursor: z.preprocess(blankToUndefined, schemas.cursor.optional()),
    format: z.preprocess(blankToUndefined, z.enum(['json', 'csv']).optional()),
  })
  .strict()
  .refine((q) => !(q.from && q.to) || q.from < q.to, { path: ['to'], message: 'must be after from' });
export type TransfersQuery = z.infer<typeof TransfersQuery>;

/** `:id` of a transfer (transfer ids are caller-chosen text up to 255 characters). */
export const TransferIdParams = z.object({ id: z.string().min(1).max(255) }).strict();
