import type { Db } from '../db/database.ts';
import type { TransferKind } from '../ledger/ledger-types.ts';

/**
 * SQL of a user's own insight: spend per period and operation, spend totals, the lots that decide
 * the runway, estimate vs. actual of jobs, and monthly statements. Amounts are integer
 * millicredits; periods are UTC. Usage reads use `transfers_usage_by_account` (index-only).
 */

export type Granularity = 'day' | 'week' | 'month';

/** The account of a user (undefined: the user has none yet, so no history). */
export async function accountOf(db: Db, userId: string): Promise<{ id: string; posted: number } | undefined> {
  const row = await db('accounts').where({ user_id: userId }).first('id', db.raw('(credits_posted - debits_posted)::bigint AS posted'));
  return row as { id: string; posted: number } | undefined;
}

/** The operation a usage transfer paid for, from its reference (a task is OCR). */
export const OPERATION_SQL = `CASE WHEN reference_type = 'task' THEN 'ocr' ELSE COALESCE(reference_type, 'other') END`;

export interface UsageRow {
  periodStart: Date;
  operation: string;
  amount: number;
  jobs: number;
}

/** Usage spend of `accountId` in [from, to), per UTC period (and operation). */
export async function usageRows(db: Db, accountId: string, from: Date, to: Date, granularity: Granularity): Promise<UsageRow[]> {
  const { rows } = await db.raw(
    `SELECT (date_trunc(?, created_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC') AS period_start, ${OPERATION_SQL} AS operation,
            SUM(amount)::bigint AS amount, COUNT(*)::bigint AS jobs
       FROM transfers
      WHERE debit_account_id = ? AND kind = 'usage' AND created_at >= ? AND created_at < ?
      GROUP BY 1, 2 ORDER BY 1, 2`,
    [granularity, accountId, from, to],
  );
  return (rows as Array<{ period_start: Date; operation: string; amount: number; jobs: number }>).map((r) => ({
    periodStart: r.period_start,
    operation: r.operation,
    amount: r.amount,
    jobs: r.jobs,
  }));
}

/**
 * As {@link usageRows}, from the daily rollup (`usage_daily`, kept by a trigger in the ledger's
 * transactions): for ranges of whole UTC days, `from` and `to` at midnight.
 */
export async function usageRowsByDay(db: Db, accountId: string, from: Date, to: Date, granularity: Granularity): Promise<UsageRow[]> {
  const { rows } = await db.raw(
    `SELECT (date_trunc(?, day::timestamp) AT TIME ZONE 'UTC') AS period_start, operation, SUM(amount)::bigint AS amount, SUM(transfers)::bigint AS jobs
       FROM usage_daily WHERE account_id = ? AND day >= ?::date AND day < ?::date
      GROUP BY 1, 2 ORDER BY 1, 2`,
    [granularity, accountId, from.toISOString().slice(0, 10), to.toISOString().slice(0, 10)],
  );
  return (rows as Array<{ period_start: Date; operation: string; amount: number; jobs: number }>).map((r) => ({
    periodStart: r.period_start,
    operation: r.operation,
    amount: r.amount,
    jobs: r.jobs,
  }));
}

/** As {@link usageTotals}, from the daily rollup (whole UTC days). */
export async function usageTotalsByDay(db: Db, accountId: string, from: Date, to: Date): Promise<Array<{ operation: string; amount: number; jobs: number }>> {
  const { rows } = await db.raw(
    `SELECT operation, SUM(amount)::bigint AS amount, SUM(transfers)::bigint AS jobs
       FROM usage_daily WHERE account_id = ? AND day >= ?::date AND day < ?::date GROUP BY 1 ORDER BY 1`,
    [accountId, from.toISOString().slice(0, 10), to.toISOString().slice(0, 10)],
  );
  return rows as Array<{ operation: string; amount: number; jobs: number }>;
}

/** Usage spend of `accountId` in [from, to) per operation. */
export async function usageTotals(db: Db, accountId: string, from: Date, to: Date): Promise<Array<{ operation: string; amount: number; jobs: number }>> {
  const { rows } = await db.raw(
    `SELECT ${OPERATION_SQL} AS operation, SUM(amount)::bigint AS amount, COUNT(*)::bigint AS jobs
       FROM transfers WHERE debit_account_id = ? AND kind = 'usage' AND created_at >= ? AND created_at < ?
      GROUP BY 1 ORDER BY 1`,
    [accountId, from, to],
  );
  return rows as Array<{ operation: string; amount: number; jobs: number }>;
}

/** Usage spend since `monthStart` and since `since30` (both ≤ now), in one index-only scan. */
export async function spendSince(db: Db, accountId: string, monthStart: Date, since30: Date): Promise<{ month: number; last30: number }> {
  const { rows } = await db.raw(
    `SELECT COALESCE(SUM(amount) FILTER (WHERE created_at >= ?), 0)::bigint AS month,
            COALESCE(SUM(amount) FILTER (WHERE created_at >= ?), 0)::bigint AS last30
       FROM transfers WHERE debit_account_id = ? AND kind = 'usage' AND created_at >= least(?::timestamptz, ?::timestamptz)`,
    [monthStart, since30, accountId, monthStart, since30],
  );
  return rows[0] as { month: number; last30: number };
}

export interface JobAccuracyRow {
  holdId: string;
  taskId: string | null;
  fileName: string | null;
  estimated: number;
  actual: number;
  resolvedAt: Date;
}

/** The last `limit` posted holds of the account (jobs): what was held (estimate) and posted (actual). */
export async function recentJobs(db: Db, accountId: string, limit: number): Promise<JobAccuracyRow[]> {
  const { rows } = await db.raw(
    `SELECT h.id AS hold_id, t.id AS task_id, t.file_name, h.amount AS estimated, h.posted_amount AS actual, h.resolved_at
       FROM holds h LEFT JOIN tasks t ON h.reference_type = 'task' AND t.id::text = h.reference_id
      WHERE h.account_id = ? AND h.status = 'posted'
      ORDER BY h.resolved_at DESC LIMIT ?`,
    [accountId, limit],
  );
  return (rows as Array<{ hold_id: string; task_id: string | null; file_name: string | null; estimated: number; actual: number; resolved_at: Date }>).map((r) => ({
    holdId: r.hold_id,
    taskId: r.task_id,
    fileName: r.file_name,
    estimated: r.estimated,
    actual: r.actual,
    resolvedAt: r.resolved_at,
  }));
}

/** Signed sum (in − out) of the account's transfers at or after `from` (and before `to` when given). */
export async function netSince(db: Db, accountId: string, from: Date, to?: Date): Promise<number> {
  const { rows } = await db.raw(
    `SELECT COALESCE((SELECT SUM(amount) FROM transfers WHERE credit_account_id = :a AND created_at >= :from ${to ? 'AND created_at < :to' : ''}), 0)
          - COALESCE((SELECT SUM(amount) FROM transfers WHERE debit_account_id = :a AND created_at >= :from ${to ? 'AND created_at < :to' : ''}), 0) AS net`,
    { a: accountId, from, ...(to ? { to } : {}) },
  );
  return Number((rows[0] as { net: string }).net);
}

export interface StatementLine {
  id: string;
  kind: TransferKind;
  /** Signed millicredits: positive came in. */
  amount: number;
  reason: string | null;
  referenceType: string | null;
  referenceId: string | null;
  createdAt: Date;
}

/**
 * The account's transfers in [from, to), oldest first (a month's statement lines), `limit` at a
 * time after the keyset `after` (created_at, id).
 */
export async function statementLines(db: Db, accountId: string, from: Date, to: Date, limit: number, after?: { createdAt: Date; id: string }): Promise<StatementLine[]> {
  const { rows } = await db.raw(
    `SELECT id, kind, CASE WHEN credit_account_id = :a THEN amount ELSE -amount END AS amount, reason, reference_type, reference_id, created_at
       FROM (SELECT * FROM transfers WHERE credit_account_id = :a AND created_at >= :from AND created_at < :to ${after ? 'AND (created_at, id) > (:afterAt, :afterId)' : ''}
             UNION ALL
             SELECT * FROM transfers WHERE debit_account_id = :a AND created_at >= :from AND created_at < :to ${after ? 'AND (created_at, id) > (:afterAt, :afterId)' : ''}) t
      ORDER BY created_at, id LIMIT :limit`,
    { a: accountId, from, to, limit, ...(after ? { afterAt: after.createdAt, afterId: after.id } : {}) },
  );
  return (rows as Array<{ id: string; kind: TransferKind; amount: number; reason: string | null; reference_type: string | null; reference_id: string | null; created_at: Date }>).map((r) => ({
    id: r.id,
    kind: r.kind,
    amount: r.amount,
    reason: r.reason,
    referenceType: r.reference_type,
    referenceId: r.reference_id,
    createdAt: r.created_at,
  }));
}

/** Signed sums (in − out) per kind of the account's transfers in [from, to), and before the keyset `until` when given. */
export async function sumsByKind(db: Db, accountId: string, from: Date, to: Date, until?: { createdAt: Date; id: string }): Promise<Array<{ kind: string; amount: number }>> {
  const cond = `created_at >= :from AND created_at < :to ${until ? 'AND (created_at, id) <= (:untilAt, :untilId)' : ''}`;
  const { rows } = await db.raw(
    `SELECT kind, SUM(amount)::bigint AS amount FROM (
        SELECT kind, amount FROM transfers WHERE credit_account_id = :a AND ${cond}
        UNION ALL SELECT kind, -amount FROM transfers WHERE debit_account_id = :a AND ${cond}) t
      GROUP BY kind`,
    { a: accountId, from, to, ...(until ? { untilAt: until.createdAt, untilId: until.id } : {}) },
  );
  return rows as Array<{ kind: string; amount: number }>;
}

/** The first month (UTC, `YYYY-MM`) with a transfer on the account, or undefined. */
export async function firstMonth(db: Db, accountId: string): Promise<Date | undefined> {
  const { rows } = await db.raw(
    `SELECT least((SELECT min(created_at) FROM transfers WHERE credit_account_id = :a), (SELECT min(created_at) FROM transfers WHERE debit_account_id = :a)) AS first`,
    { a: accountId },
  );
  return (rows[0] as { first: Date | null }).first ?? undefined;
}
