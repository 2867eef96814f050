import type { Db } from '../db/database.ts';
import { ValidationError } from '../http/errors.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { TransferKind } from '../ledger/ledger-types.ts';
import { decodeCursor, encodeCursor } from '../pagination.ts';
import { projectEmptyAt } from './runway.ts';
import * as store from './usage-store.ts';
import type { Granularity } from './usage-store.ts';

const DAY = 86_400_000;

/** The start of the UTC period (day, ISO week from Monday, month) that contains `d`. */
export function periodFloor(d: Date, g: Granularity): Date {
  const day = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate());
  if (g === 'day') return new Date(day);
  if (g === 'month') return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
  const dow = (new Date(day).getUTCDay() + 6) % 7; // Monday = 0, as PostgreSQL's date_trunc('week')
  return new Date(day - dow * DAY);
}

/** The period after the one starting at `start`. */
export function periodNext(start: Date, g: Granularity): Date {
  if (g === 'day') return new Date(start.getTime() + DAY);
  if (g === 'week') return new Date(start.getTime() + 7 * DAY);
  return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1));
}

/** Every period start from the one containing `from` up to (not including) `to`. */
export function periodsBetween(from: Date, to: Date, g: Granularity): Date[] {
  const out: Date[] = [];
  for (let p = periodFloor(from, g); p < to; p = periodNext(p, g)) out.push(p);
  return out;
}

/** A human label of an operation (`ocr` → `OCR`). */
export function operationLabel(op: string): string {
  return op === 'ocr' ? 'OCR' : op === 'bench' ? 'Bench' : op === 'other' ? 'Other' : op.charAt(0).toUpperCase() + op.slice(1);
}

export interface OperationTotal {
  operation: string;
  credits: number;
  jobs: number;
}

export interface UsageTotals {
  credits: number;
  jobs: number;
  /** Only with `groupBy=operation`. */
  operations?: OperationTotal[];
}

export interface UsageReport {
  from: string;
  to: string;
  granularity: Granularity;
  series: Array<{ periodStart: string; credits: number; jobs: number; operations?: OperationTotal[] }>;
  totals: UsageTotals;
  /** The same length of time just before `from`. */
  previousTotals: UsageTotals;
}

/** Statement categories, in the order a statement lists them. */
export type StatementCategory = 'grant' | 'spend' | 'expiry' | 'refund' | 'adjustment';

const CATEGORY: Partial<Record<TransferKind, StatementCategory>> = {
  purchase: 'grant',
  signup_bonus: 'grant',
  bonus: 'grant',
  subscription_grant: 'grant',
  adjustment: 'adjustment',
  usage: 'spend',
  refund_clawback: 'refund',
  expiry: 'expiry',
};

/** The category of a transfer kind on a statement; other kinds (team contributions, gifts…) count as grants when they bring credits in, spend when they take them out. */
export function statementCategory(kind: string, amount: number): StatementCategory {
  return CATEGORY[kind as TransferKind] ?? (amount >= 0 ? 'grant' : 'spend');
}

export interface Statement {
  month: string;
  periodStart: string;
  periodEnd: string;
  /** Posted balance (lots − debt, holds not subtracted) at the start of the month, credits. */
  openingBalance: number;
  /** Signed sums per category, credits. */
  summary: Record<StatementCategory, number>;
  entries: Array<{ id: string; date: string; category: StatementCategory; kind: string; credits: number; balanceAfter: number; description: string | null; reference: { type: string; id: string } | null }>;
  closingBalance: number;
}

function totalsOf(rows: Array<{ operation: string; amount: number; jobs: number }>, byOperation: boolean): UsageTotals {
  const credits = rows.reduce((s, r) => s + r.amount, 0);
  const jobs = rows.reduce((s, r) => s + r.jobs, 0);
  return {
    credits: millicreditsToCredits(credits),
    jobs,
    ...(byOperation ? { operations: rows.map((r) => ({ operation: r.operation, credits: millicreditsToCredits(r.amount), jobs: r.jobs })) } : {}),
  };
}

/** `YYYY-MM` of a UTC date. */
export const monthKey = (d: Date) => d.toISOString().slice(0, 7);

/**
 * A user's own insight on the ledger: spend per period and operation, balance stats with the runway
 * forecast, estimate vs. actual of jobs, and monthly statements. Amounts in results are credits
 * (JSON numbers, ≤ 3 decimals); the ledger's millicredits are summed in integers first. `clock`
 * is the ledger's (tests move it).
 */
export function createUsageService(deps: { db: Db; ledger: Pick<Ledger, 'getBalance'>; clock?: () => Date }) {
  const { db, ledger } = deps;
  const clock = deps.clock ?? (() => new Date());

  return {
    /**
     * Spend (usage transfers) per UTC period in [from, to), with totals and the totals of the same
     * length of time before. Defaults: `to` = the end of today; `from` = 30 days (day), 12 weeks
     * (week) or 12 months (month) before it.
     */
    async usage(userId: string, q: { from?: Date; to?: Date; granularity: Granularity; groupBy?: 'operation' }): Promise<UsageReport> {
      const now = clock();
      const g = q.granularity;
      const to = q.to ?? new Date(periodFloor(now, 'day').getTime() + DAY);
      const from =
        q.from ?? (g === 'day' ? new Date(to.getTime() - 30 * DAY) : g === 'week' ? new Date(periodFloor(to, 'week').getTime() - 11 * 7 * DAY) : new Date(Date.UTC(to.getUTCFullYear(), to.getUTCMonth() - 11, 1)));
      if (from >= to) throw new ValidationError([{ field: q.from ? 'query.from' : 'query.to', message: 'must be before to (default: the end of today)' }]);
      const prevFrom = new Date(from.getTime() - (to.getTime() - from.getTime()));
      const byOp = q.groupBy === 'operation';
      const account = await store.accountOf(db, userId);
      const [rows, totals, previous] = account
        ? await Promise.all([store.usageRows(db, account.id, from, to, g), store.usageTotals(db, account.id, from, to), store.usageTotals(db, account.id, prevFrom, from)])
        : [[], [], []];
      const byPeriod = new Map<number, store.UsageRow[]>();
      for (const r of rows) {
        const k = r.periodStart.getTime();
        byPeriod.set(k, [...(byPeriod.get(k) ?? []), r]);
      }
      const series = periodsBetween(from, to, g).map((p) => {
        const rs = byPeriod.get(p.getTime()) ?? [];
        return { periodStart: p.toISOString(), ...totalsOf(rs, byOp) };
      });
      return { from: from.toISOString(), to: to.toISOString(), granularity: g, series, totals: totalsOf(totals, byOp), previousTotals: totalsOf(previous, byOp) };
    },

    /**
     * `{available, held, debt, spentThisMonth, spentLast30Days, averageDailySpend, runwayDays,
     * projectedEmptyAt, nextExpiry}`: the balance, spend of this UTC month and of the last 30 days,
     * its daily average, and when the credits run out at that rate, spending soonest-expiring lots
     * first and losing what expires unspent ({@link projectEmptyAt}). Null runway: no spend in 30 days.
     */
    async stats(userId: string) {
      const now = clock();
      const balance = await ledger.getBalance(userId);
      const account = await store.accountOf(db, userId);
      const monthStart = periodFloor(now, 'month');
      const spent = account ? await store.spendSince(db, account.id, monthStart, new Date(now.getTime() - 30 * DAY)) : { month: 0, last30: 0 };
      const daily = Math.floor(spent.last30 / 30);
      const lots = balance.lots.map((l) => ({ free: l.remaining - l.held, expiresAt: l.expiresAt }));
      const empty = projectEmptyAt(lots, balance.debt, daily, now);
      const upcoming = lots.filter((l) => l.free > 0 && l.expiresAt && l.expiresAt > now).sort((a, b) => a.expiresAt!.getTime() - b.expiresAt!.getTime());
      const next = upcoming[0];
      return {
        available: millicreditsToCredits(balance.available),
        held: millicreditsToCredits(balance.held),
        debt: millicreditsToCredits(balance.debt),
        spentThisMonth: millicreditsToCredits(spent.month),
        spentLast30Days: millicreditsToCredits(spent.last30),
        averageDailySpend: millicreditsToCredits(daily),
        runwayDays: empty === null ? null : Math.max(0, Math.floor((empty.getTime() - now.getTime()) / DAY)),
        projectedEmptyAt: empty?.toISOString() ?? null,
        nextExpiry: next
          ? {
              at: next.expiresAt!.toISOString(),
              credits: millicreditsToCredits(upcoming.filter((l) => l.expiresAt!.getTime() === next.expiresAt!.getTime()).reduce((s, l) => s + l.free, 0)),
            }
          : null,
      };
    },

    /**
     * The last `limit` finished jobs (posted holds): estimate (held), actual (posted) and the actual
     * as a percentage of the estimate; `averagePercent` over them (null without jobs).
     */
    async jobs(userId: string, limit = 20) {
      const account = await store.accountOf(db, userId);
      const rows = account ? await store.recentJobs(db, account.id, limit) : [];
      const jobs = rows.map((r) => ({
        taskId: r.taskId,
        fileName: r.fileName,
        estimated: millicreditsToCredits(r.estimated),
        actual: millicreditsToCredits(r.actual),
        percentOfEstimate: r.estimated > 0 ? Math.round((r.actual / r.estimated) * 1000) / 10 : null,
        completedAt: r.resolvedAt.toISOString(),
      }));
      const est = rows.reduce((s, r) => s + r.estimated, 0);
      const act = rows.reduce((s, r) => s + r.actual, 0);
      return { jobs, averagePercent: est > 0 ? Math.round((act / est) * 1000) / 10 : null };
    },

    /**
     * The statement of a UTC month (`YYYY-MM`): opening balance, the sums per category and the
     * closing balance of the whole month, and its transfers in order with the balance after each,
     * `limit` (default 100) at a time from `cursor` (`nextCursor` of the previous page; null on the
     * last). The opening balance is the account's posted balance now (credits_posted −
     * debits_posted, kept by the ledger's own transactions) minus everything since the month
     * began, so a month closes on the next one's opening and the current month on the ledger's
     * figure. Throws ValidationError (400, `params.month`) for a month after the current one, and
     * (`query.cursor`) for a cursor this API did not make.
     */
    async statement(userId: string, month: string, page: { limit?: number; cursor?: string } = {}): Promise<Statement & { nextCursor: string | null }> {
      const now = clock();
      const start = new Date(`${month}-01T00:00:00.000Z`);
      const end = periodNext(start, 'month');
      if (start > now) throw new ValidationError([{ field: 'params.month', message: 'is in the future' }]);
      const limit = page.limit ?? 100;
      const after = page.cursor ? decodeCursor(page.cursor) : undefined;
      const account = await store.accountOf(db, userId);
      const summary: Record<StatementCategory, number> = { grant: 0, spend: 0, expiry: 0, refund: 0, adjustment: 0 };
      if (!account) return { month, periodStart: start.toISOString(), periodEnd: end.toISOString(), openingBalance: 0, summary, entries: [], closingBalance: 0, nextCursor: null };
      // The balance and the month's sums from one snapshot: a transfer committing meanwhile is in both or neither.
      const figures = await store.monthFigures(db, account.id, start, end, after);
      const lines = await store.statementLines(db, account.id, start, end, limit + 1, after);
      const { posted, since, byKind } = figures;
      const opening = posted - since;
      const sums: Record<StatementCategory, number> = { grant: 0, spend: 0, expiry: 0, refund: 0, adjustment: 0 };
      for (const k of byKind) sums[statementCategory(k.kind, k.amount)] += k.amount;
      let running = opening + figures.before;
      const shown = lines.slice(0, limit);
      const entries = shown.map((l) => {
        running += l.amount;
        return {
          id: l.id,
          date: l.createdAt.toISOString(),
          category: statementCategory(l.kind, l.amount),
          kind: l.kind,
          credits: millicreditsToCredits(l.amount),
          balanceAfter: millicreditsToCredits(running),
          description: l.reason,
          reference: l.referenceType && l.referenceId ? { type: l.referenceType, id: l.referenceId } : null,
        };
      });
      for (const k of Object.keys(sums) as StatementCategory[]) summary[k] = millicreditsToCredits(sums[k]);
      const last = shown.at(-1);
      return {
        month,
        periodStart: start.toISOString(),
        periodEnd: end.toISOString(),
        openingBalance: millicreditsToCredits(opening),
        summary,
        entries,
        closingBalance: millicreditsToCredits(opening + byKind.reduce((t, k) => t + k.amount, 0)),
        nextCursor: lines.length > limit && last ? encodeCursor(last.createdAt, last.id) : null,
      };
    },

    /** The months (`YYYY-MM`, newest first) from the account's first transfer to now. */
    async statementMonths(userId: string): Promise<string[]> {
      const account = await store.accountOf(db, userId);
      const first = account ? await store.firstMonth(db, account.id) : undefined;
      const now = clock();
      if (!first) return [monthKey(now)];
      const out: string[] = [];
      for (let p = periodFloor(first, 'month'); p <= now; p = periodNext(p, 'month')) out.unshift(monthKey(p));
      return out;
    },
  };
}

export type UsageService = ReturnType<typeof createUsageService>;
