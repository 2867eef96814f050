import { z } from 'zod';

/** zod schemas of the insight routes (usage, stats, statements, receipts, admin reports). */

const blankToUndefined = (v: unknown) => (v === '' ? undefined : v);

/**
 * A date (`2026-11-21`, a whole UTC day) or an ISO 8601 date-time with an offset. As the end of a
 * range (`edge: 'end'`), a date means the end of that day, so `to=2026-11-21` includes the 21st.
 */
function DateParam(edge: 'start' | 'end') {
  return z.string().transform((s, ctx) => {
    if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
      const d = new Date(`${s}T00:00:00.000Z`);
      if (!Number.isNaN(d.getTime()) && d.toISOString().startsWith(s)) return edge === 'end' ? new Date(d.getTime() + 86_400_000) : d;
    } else if (z.iso.datetime({ offset: true }).safeParse(s).success) {
      return new Date(s);
    }
    ctx.addIssue({ code: 'custom', message: 'must be a date (YYYY-MM-DD) or an ISO 8601 date-time' });
    return z.NEVER;
  });
}

/** Longest range per granularity, days (a chart of at most a few hundred bars). */
export const MAX_RANGE_DAYS = { day: 400, week: 5 * 366, month: 20 * 366 } as const;

/** `GET /api/credits/usage?from=&to=&granularity=day|week|month&groupBy=operation` (and /account/usage). */
export const UsageQuery = z
  .object({
    from: z.preprocess(blankToUndefined, DateParam('start').optional()),
    to: z.preprocess(blankToUndefined, DateParam('end').optional()),
    granularity: z.preprocess(blankToUndefined, z.enum(['day', 'week', 'month']).default('day')),
    groupBy: z.preprocess(blankToUndefined, z.enum(['operation']).optional()),
  })
  .strict()
  .refine((q) => !(q.from && q.to) || q.from < q.to, { path: ['to'], message: 'must be after from' })
  .refine((q) => !(q.from && q.to) || q.to.getTime() - q.from.getTime() <= MAX_RANGE_DAYS[q.granularity] * 86_400_000, {
    path: ['from'],
    message: 'range too long for this granularity (day: 400 days, week: 5 years, month: 20 years)',
  });
export type UsageQuery = z.infer<typeof UsageQuery>;

/** `:month` of a statement: `YYYY-MM`. */
export const StatementParams = z.object({ month: z.string().regex(/^\d{4}-(0[1-9]|1[0-2])$/, 'must be a month as YYYY-MM') }).strict();

/** `GET /api/credits/statements/:month?format=json|csv&limit=&cursor=` (limit and cursor: JSON only; the CSV has every entry). */
export const StatementQuery = z
  .object({
    format: z.preprocess(blankToUndefined, z.enum(['json', 'csv']).default('json')),
    limit: z.preprocess(blankToUndefined, z.coerce.number().int().min(1).max(1000).optional()),
    cursor: z.preprocess(blankToUndefined, z.string().min(1).max(500).optional()),
  })
  .strict();

/** `:id` of a payment. */
export const PaymentIdParams = z.object({ id: z.uuid() }).strict();

/** A whole UTC day `YYYY-MM-DD` (reports count whole days); as the end of a range, the end of that day. */
function DayParam(edge: 'start' | 'end') {
  return z.string().transform((s, ctx) => {
    const d = new Date(`${s}T00:00:00.000Z`);
    if (/^\d{4}-\d{2}-\d{2}$/.test(s) && !Number.isNaN(d.getTime()) && d.toISOString().startsWith(s)) return edge === 'end' ? new Date(d.getTime() + 86_400_000) : d;
    ctx.addIssue({ code: 'custom', message: 'must be a date (YYYY-MM-DD)' });
    return z.NEVER;
  });
}

/** `GET /api/admin/reports/*?from=&to=&granularity=day|month&format=json|csv` (dates: whole UTC days). */
export const ReportQuery = z
  .object({
    from: z.preprocess(blankToUndefined, DayParam('start').optional()),
    to: z.preprocess(blankToUndefined, DayParam('end').optional()),
    granularity: z.preprocess(blankToUndefined, z.enum(['day', 'month']).default('day')),
    format: z.preprocess(blankToUndefined, z.enum(['json', 'csv']).default('json')),
  })
  .strict()
  .refine((q) => !(q.from && q.to) || q.from < q.to, { path: ['to'], message: 'must be after from' })
  .refine((q) => !(q.from && q.to) || q.to.getTime() - q.from.getTime() <= MAX_RANGE_DAYS[q.granularity] * 86_400_000, {
    path: ['from'],
    message: 'range too long for this granularity (day: 400 days, month: 20 years)',
  });
export type ReportQuery = z.infer<typeof ReportQuery>;
