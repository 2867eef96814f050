import type { Db } from '../db/database.ts';

/** One broken invariant: which rule (`invariant`), what is wrong (`detail`), and the rows involved. */
export interface Violation {
  invariant: string;
  detail: string;
  [key: string]: unknown;
}

interface Check {
  invariant: string;
  sql: string;
  detail: (row: Record<string, unknown>) => string;
}

/**
 * Every invariant of DESIGN.md ("The ledger") as a query that returns the offending rows.
 * Each is computed from the transfers and allocations themselves, so a row changed by hand
 * (amount, account, kind) shows up as a mismatch somewhere.
 */
const CHECKS: Check[] = [
  {
    invariant: 'transfer_amount_positive',
    sql: `SELECT id, amount FROM transfers WHERE amount <= 0`,
    detail: (r) => `transfer ${r.id} has amount ${r.amount}`,
  },
  {
    invariant: 'double_entry',
    sql: `WITH sides AS (
            SELECT credit_account_id AS account_id, amount AS delta FROM transfers
            UNION ALL SELECT debit_account_id, -amount FROM transfers),
          derived AS (SELECT a.id, a.code, COALESCE(SUM(s.delta), 0) AS balance
                        FROM accounts a LEFT JOIN sides s ON s.account_id = a.id GROUP BY a.id, a.code)
          SELECT SUM(CASE WHEN d.code IS NULL THEN a.credits_posted - a.debits_posted ELSE d.balance END) AS total
            FROM derived d JOIN accounts a ON a.id = d.id
          HAVING SUM(CASE WHEN d.code IS NULL THEN a.credits_posted - a.debits_posted ELSE d.balance END) <> 0`,
    detail: (r) => `accounts' credits − debits sum to ${r.total}, not 0`,
  },
  {
    invariant: 'account_totals_match_transfers',
    sql: `SELECT a.id, a.user_id, a.team_id, a.credits_posted, a.debits_posted,
                 COALESCE((SELECT SUM(amount) FROM transfers WHERE credit_account_id = a.id), 0) AS credits,
                 COALESCE((SELECT SUM(amount) FROM transfers WHERE debit_account_id = a.id), 0) AS debits
            FROM accounts a
           WHERE a.code IS NULL
             AND (a.credits_posted <> COALESCE((SELECT SUM(amount) FROM transfers WHERE credit_account_id = a.id), 0)
               OR a.debits_posted <> COALESCE((SELECT SUM(amount) FROM transfers WHERE debit_account_id = a.id), 0))`,
    detail: (r) =>
      `account ${r.id} records credits ${r.credits_posted} / debits ${r.debits_posted}, its transfers sum to ${r.credits} / ${r.debits}`,
  },
  {
    invariant: 'account_balance_matches_lots',
    sql: `SELECT a.id, a.credits_posted - a.debits_posted AS balance, a.debt,
                 COALESCE((SELECT SUM(remaining) FROM lots WHERE account_id = a.id), 0) AS lots
            FROM accounts a
           WHERE a.code IS NULL
             AND a.credits_posted - a.debits_posted <> COALESCE((SELECT SUM(remaining) FROM lots WHERE account_id = a.id), 0) - a.debt`,
    detail: (r) => `account ${r.id} balance ${r.balance} ≠ lot remainders ${r.lots} − debt ${r.debt}`,
  },
  {
    invariant: 'lot_remaining_matches_allocations',
    sql: `SELECT l.id, l.amount, l.remaining, COALESCE(SUM(x.amount), 0) AS drawn
            FROM lots l LEFT JOIN transfer_allocations x ON x.lot_id = l.id
           GROUP BY l.id HAVING l.remaining <> l.amount - COALESCE(SUM(x.amount), 0)`,
    detail: (r) => `lot ${r.id}: remaining ${r.remaining} ≠ amount ${r.amount} − drawn ${r.drawn}`,
  },
  {
    invariant: 'lot_bounds',
    sql: `SELECT id, amount, remaining, held FROM lots WHERE remaining < 0 OR held < 0 OR held > remaining OR remaining > amount`,
    detail: (r) => `lot ${r.id}: amount ${r.amount}, remaining ${r.remaining}, held ${r.held}`,
  },
  {
    invariant: 'grant_has_matching_lot',
    sql: `SELECT t.id, t.amount, l.amount AS lot_amount, l.account_id, t.credit_account_id
            FROM transfers t LEFT JOIN lots l ON l.transfer_id = t.id
            JOIN accounts a ON a.id = t.credit_account_id AND a.code IS NULL
           WHERE l.id IS NULL OR l.amount <> t.amount OR l.account_id <> t.credit_account_id`,
    detail: (r) => `transfer ${r.id} of ${r.amount} into a user account has lot amount ${r.lot_amount ?? 'none'}`,
  },
  {
    invariant: 'spend_matches_allocations',
    sql: `SELECT t.id, t.kind, t.amount, COALESCE(SUM(x.amount), 0) AS allocated
            FROM transfers t
            JOIN accounts a ON a.id = t.debit_account_id AND a.code IS NULL
            LEFT JOIN transfer_allocations x ON x.transfer_id = t.id
           GROUP BY t.id
          HAVING (t.kind <> 'refund_clawback' AND COALESCE(SUM(x.amount), 0) <> t.amount)
              OR (t.kind = 'refund_clawback' AND COALESCE(SUM(x.amount), 0) > t.amount)`,
    detail: (r) => `${r.kind} transfer ${r.id} of ${r.amount} drew ${r.allocated} from lots`,
  },
  {
    invariant: 'allocation_same_account',
    sql: `SELECT x.id, x.transfer_id, x.lot_id FROM transfer_allocations x
            JOIN transfers t ON t.id = x.transfer_id JOIN lots l ON l.id = x.lot_id
           WHERE l.account_id <> t.debit_account_id`,
    detail: (r) => `allocation ${r.id} draws lot ${r.lot_id} for a transfer ${r.transfer_id} of another account`,
  },
  {
    invariant: 'debt_matches_clawbacks',
    sql: `SELECT a.id, a.debt, COALESCE(c.outstanding, 0) AS outstanding
            FROM accounts a
            LEFT JOIN (SELECT t.debit_account_id AS account_id,
                              SUM(t.amount - COALESCE((SELECT SUM(amount) FROM transfer_allocations WHERE transfer_id = t.id), 0)) AS outstanding
                         FROM transfers t WHERE t.kind = 'refund_clawback' GROUP BY t.debit_account_id) c ON c.account_id = a.id
           WHERE a.code IS NULL AND a.debt <> COALESCE(c.outstanding, 0)`,
    detail: (r) => `account ${r.id} records debt ${r.debt}, unrepaid clawbacks total ${r.outstanding}`,
  },
  {
    invariant: 'held_matches_active_holds',
    sql: `SELECT a.id, a.debits_pending, COALESCE(SUM(h.amount), 0) AS active
            FROM accounts a LEFT JOIN holds h ON h.account_id = a.id AND h.status = 'active'
           WHERE a.code IS NULL GROUP BY a.id HAVING a.debits_pending <> COALESCE(SUM(h.amount), 0)`,
    detail: (r) => `account ${r.id} records ${r.debits_pending} held, active holds total ${r.active}`,
  },
  {
    invariant: 'lot_held_matches_holds',
    sql: `SELECT l.id, l.held, COALESCE(SUM(hl.amount) FILTER (WHERE h.status = 'active'), 0) AS active
            FROM lots l LEFT JOIN hold_lots hl ON hl.lot_id = l.id LEFT JOIN holds h ON h.id = hl.hold_id
           GROUP BY l.id HAVING l.held <> COALESCE(SUM(hl.amount) FILTER (WHERE h.status = 'active'), 0)`,
    detail: (r) => `lot ${r.id} records ${r.held} held, active holds earmark ${r.active}`,
  },
  {
    invariant: 'hold_lots_cover_hold',
    sql: `SELECT h.id, h.amount, COALESCE(SUM(hl.amount), 0) AS earmarked
            FROM holds h LEFT JOIN hold_lots hl ON hl.hold_id = h.id
           GROUP BY h.id HAVING h.amount <> COALESCE(SUM(hl.amount), 0)`,
    detail: (r) => `hold ${r.id} of ${r.amount} earmarked ${r.earmarked} on lots`,
  },
  {
    invariant: 'hold_resolved_once',
    sql: `SELECT h.id, h.status, h.amount, h.posted_amount, t.id AS transfer_id, t.amount AS transfer_amount
            FROM holds h LEFT JOIN transfers t ON t.hold_id = h.id
           WHERE (h.status <> 'posted' AND t.id IS NOT NULL)
              OR (h.status = 'posted' AND (h.posted_amount > h.amount
                   OR (h.posted_amount > 0 AND (t.id IS NULL OR t.amount <> h.posted_amount OR h.transfer_id IS DISTINCT FROM t.id))
                   OR (h.posted_amount = 0 AND t.id IS NOT NULL)))`,
    detail: (r) => `hold ${r.id} is ${r.status} (posted ${r.posted_amount ?? '-'} of ${r.amount}) with transfer ${r.transfer_id ?? 'none'} of ${r.transfer_amount ?? '-'}`,
  },
  {
    invariant: 'no_overdue_active_hold',
    sql: `SELECT id, expires_at FROM holds WHERE status = 'active' AND expires_at < now() - make_interval(secs => ?::double precision)`,
    detail: (r) => `hold ${r.id} is still active though it timed out at ${(r.expires_at as Date).toISOString()}`,
  },
];

/**
 * Verifies every ledger invariant against the database and returns the violations (empty = the
 * books balance). `sweepIntervalMs` is the grace allowed to the hold sweeper.
 */
export async function checkBooks(db: Db, options: { sweepIntervalMs: number }): Promise<Violation[]> {
  const violations: Violation[] = [];
  for (const check of CHECKS) {
    const params = check.sql.includes('?') ? [options.sweepIntervalMs / 1000] : [];
    const result = await db.raw(check.sql, params);
    for (const row of result.rows as Array<Record<string, unknown>>) {
      violations.push({ invariant: check.invariant, detail: check.detail(row), ...row });
    }
  }
  return violations;
}
