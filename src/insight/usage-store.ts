import type { Knex } from 'knex';
import type { Db } from '../db/database.ts';
import type { TransferKind } from '../ledger/ledger-types.ts';

/**
 * SQL of a user's own insight: spend per period and operation, spend totals, the lots that decide
 * the runway, estimate vs. actual of jobs, and monthly statements. Amounts are integer
 * millicredits; periods are UTC. Usage reads whole days from the daily rollup `usage_daily` and the
 * rest from `transfers_usage_by_account` (index-only).
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

const DAY_MS = 86_400_000;

/**
 * How a range [from, to) is read: its whole UTC days from the daily rollup (`usage_daily`, kept in
 * step by a trigger in the ledger's own transactions), and the parts of a day before the first and
 * after the last midnight from the transfers (`transfers_usage_by_account`, index-only). So any
 * range reads at most two days of transfers, however long it is and wherever it starts.
 * `days` is undefined when the range holds no whole day (it is read from the transfers alone).
 */
function splitAtMidnights(from: Date, to: Date): { days?: { from: Date; to: Date }; head: [Date, Date]; tail: [Date, Date] } {
  const firstMidnight = new Date(Math.ceil(from.getTime() / DAY_MS) * DAY_MS);
  const lastMidnight = new Date(Math.floor(to.getTime() / DAY_MS) * DAY_MS);
  if (firstMidnight >= lastMidnight) return { head: [from, to], tail: [to, to] };
  return { days: { from: firstMidnight, to: lastMidnight }, head: [from, firstMidnight], tail: [lastMidnight, to] };
}

/**
 * The usage of `accountId` in [from, to) as rows `(bucket, operation, amount, jobs)`: the whole days
 * from the rollup, the edges from the transfers ({@link splitAtMidnights}). `bucket(utc)` is the SQL
 * of a row's period, given the SQL of its UTC wall-clock timestamp (a transfer's time or a rollup
 * day's midnight), with `bucketBindings` for its placeholders.
 */
function usageUnion(accountId: string, from: Date, to: Date, bucket: (utc: string) => string, bucketBindings: unknown[]) {
  const { days, head, tail } = splitAtMidnights(from, to);
  const edge = `SELECT ${bucket(`created_at AT TIME ZONE 'UTC'`)} AS bucket, ${OPERATION_SQL} AS operation, amount, 1 AS jobs
      FROM transfers WHERE debit_account_id = ? AND kind = 'usage' AND created_at >= ? AND created_at < ?`;
  const parts = [edge, edge];
  const bindings: unknown[] = [...bucketBindings, accountId, head[0], head[1], ...bucketBindings, accountId, tail[0], tail[1]];
  if (days) {
    parts.push(`SELECT ${bucket('day::timestamp')} AS bucket, operation, amount, transfers AS jobs
      FROM usage_daily WHERE account_id = ? AND day >= (?::timestamptz AT TIME ZONE 'UTC')::date AND day < (?::timestamptz AT TIME ZONE 'UTC')::date`);
    bindings.push(...bucketBindings, accountId, days.from, days.to);
  }
  return { sql: parts.join('\n UNION ALL\n'), bindings };
}

/**
 * Usage spend of `accountId` in [from, to), per UTC period (day, ISO week from Monday, month) and
 * operation; amounts in millicredits, `jobs` = usage transfers. Whole days come from the daily
 * rollup, the edges from the transfers (the same figures; tested).
 */
export async function usageRows(db: Db, accountId: string, from: Date, to: Date, granularity: Granularity): Promise<UsageRow[]> {
  const u = usageUnion(accountId, from, to, (utc) => `(date_trunc(?, ${utc}) AT TIME ZONE 'UTC')`, [granularity]);
  const { rows } = await db.raw(
    `SELECT bucket AS period_start, operation, SUM(amount)::bigint AS amount, SUM(jobs)::bigint AS jobs
       FROM (${u.sql}) u GROUP BY 1, 2 ORDER BY 1, 2`,
    u.bindings as Knex.RawBinding[],
  );
  return (rows as Array<{ period_start: Date; operation: string; amount: number; jobs: number }>).map((r) => ({
    periodStart: r.period_start,
    operation: r.operation,
    amount: r.amount,
    jobs: r.jobs,
  }));
}

/** Usage spend of `accountId` in [from, to) per operation (millicredits; jobs = usage transfers), read as {@link usageRows}. */
export async function usageTotals(db: Db, accountId: string, from: Date, to: Date): Promise<Array<{ operation: string; amount: number; jobs: number }>> {
  const u = usageUnion(accountId, from, to, () => 'NULL::timestamptz', []);
  const { rows } = await db.raw(
    `SELECT operation, SUM(amount)::bigint AS amount, SUM(jobs)::bigint AS jobs FROM (${u.sql}) u GROUP BY 1 ORDER BY 1`,
    u.bindings as Knex.RawBinding[],
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
