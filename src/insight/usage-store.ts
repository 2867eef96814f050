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

/**
 * A month's figures in ONE statement (one snapshot), millicredits: `posted` = the account's posted
 * balance as the ledger keeps it (credits_posted − debits_posted); `since` = signed sum (in − out)
 * of the account's transfers from `from` until now; `byKind` = signed sums per kind in [from, to);
 * `before` = the signed sum in [from, to) up to and including the keyset `until` (the balance
 * before a page). Usage is summed from `transfers_usage_by_account`, other debits from
 * `transfers_debits_not_usage`, both covering: index-only, however many jobs the month had.
 */
export async function monthFigures(db: Db, accountId: string, from: Date, to: Date, until?: { createdAt: Date; id: string }): Promise<{ posted: number; since: number; byKind: Array<{ kind: string; amount: number }>; before: number }> {
  const { rows } = await db.raw(
    `WITH moves AS (
        SELECT kind, amount AS signed, created_at FROM transfers WHERE credit_account_id = :a AND created_at >= :from
        UNION ALL SELECT kind, -amount, created_at FROM transfers WHERE debit_account_id = :a AND kind <> 'usage' AND created_at >= :from
        UNION ALL SELECT 'usage', -amount, created_at FROM transfers WHERE debit_account_id = :a AND kind = 'usage' AND created_at >= :from),
      month AS (SELECT kind, SUM(signed)::bigint AS amount FROM moves WHERE created_at < :to GROUP BY kind)
     SELECT (SELECT credits_posted - debits_posted FROM accounts WHERE id = :a)::bigint AS posted,
            (SELECT COALESCE(SUM(signed), 0) FROM moves)::bigint AS since,
            (SELECT COALESCE(json_agg(json_build_object('kind', kind, 'amount', amount)), '[]') FROM month) AS by_kind,
            ${
              until
                ? `((SELECT COALESCE(SUM(signed), 0) FROM moves WHERE created_at < :untilAt)
                   + (SELECT COALESCE(SUM(CASE WHEN credit_account_id = :a THEN amount ELSE -amount END), 0) FROM transfers
                       WHERE (credit_account_id = :a OR debit_account_id = :a) AND created_at = :untilAt AND id <= :untilId))::bigint`
                : '0::bigint'
            } AS before`,
    { a: accountId, from, to, ...(until ? { untilAt: until.createdAt, untilId: until.id } : {}) },
  );
  const r = rows[0] as { posted: number; since: number; by_kind: Array<{ kind: string; amount: number }>; before: number };
  return { posted: r.posted, since: r.since, byKind: r.by_kind.map((k) => ({ kind: k.kind, amount: Number(k.amount) })), before: r.before };
}

/** The first month (UTC, `YYYY-MM`) with a transfer on the account, or undefined. */
export async function firstMonth(db: Db, accountId: string): Promise<Date | undefined> {
  const { rows } = await db.raw(
    `SELECT least((SELECT min(created_at) FROM transfers WHERE credit_account_id = :a), (SELECT min(created_at) FROM transfers WHERE debit_account_id = :a)) AS first`,
    { a: accountId },
  );
  return (rows[0] as { first: Date | null }).first ?? undefined;
}
