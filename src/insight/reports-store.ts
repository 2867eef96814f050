import type { Db } from '../db/database.ts';

/**
 * SQL of the admin reports. Money is integer minor units per currency; credits are millicredits;
 * periods are UTC (`day` or `month`). Each figure is a sum over the rows it comes from (payments,
 * refunds, invoices, lots, transfers and their allocations), nothing stored twice.
 */

export type ReportGranularity = 'day' | 'month';

const period = (col: string) => `(date_trunc(:g, ${col} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')`;

export interface RevenueRow {
  periodStart: Date;
  currency: string;
  /** `pack` (one-off purchase) or `plan` (subscription invoice). */
  productType: 'pack' | 'plan';
  productId: string;
  productName: string;
  gross: number;
  refunds: number;
  count: number;
}

/**
 * Revenue in [from, to) per period, currency and product: gross = paid payments (by paid_at) and
 * paid subscription invoices (by paid_at, amount_paid); refunds = succeeded refunds of payments
 * (by the refund's date). `from` and `to` are whole UTC days (midnight).
 */
export async function revenueRows(db: Db, from: Date, to: Date, g: ReportGranularity): Promise<RevenueRow[]> {
  const fromDay = from.toISOString().slice(0, 10);
  const toDay = to.toISOString().slice(0, 10);
  const { rows } = await db.raw(
    `WITH days AS (
       -- In the order of payments_paid_by_day: grouped without sorting every payment.
       SELECT date_trunc('day', paid_at AT TIME ZONE 'UTC') AS day, currency, package_id, SUM(amount_cents) AS gross, COUNT(*) AS n
         FROM payments
        WHERE paid_at IS NOT NULL AND date_trunc('day', paid_at AT TIME ZONE 'UTC') >= :fromDay::timestamp
          AND date_trunc('day', paid_at AT TIME ZONE 'UTC') < :toDay::timestamp
        GROUP BY 1, 2, 3),
     sales AS (
       SELECT date_trunc(:g, d.day) AT TIME ZONE 'UTC' AS period_start, d.currency, 'pack' AS product_type, d.package_id AS product_id,
              d.gross, 0::numeric AS refunds, d.n
         FROM days d
       UNION ALL
       SELECT ${period('r.created_at')}, p.currency, 'pack', p.package_id, 0, r.amount_cents, 0
         FROM payment_refunds r JOIN payments p ON p.id = r.payment_id
        WHERE r.status = 'succeeded' AND r.created_at >= :from AND r.created_at < :to
       UNION ALL
       SELECT ${period('i.paid_at')}, i.currency, 'plan', s.plan_id, i.amount_paid, 0, 1
         FROM subscription_invoices i JOIN subscriptions s ON s.id = i.subscription_id
        WHERE i.paid_at IS NOT NULL AND i.amount_paid > 0 AND i.paid_at >= :from AND i.paid_at < :to)
     SELECT x.period_start, x.currency, x.product_type, x.product_id,
            COALESCE(cp.name, pl.name, x.product_id) AS product_name,
            SUM(x.gross)::bigint AS gross, SUM(x.refunds)::bigint AS refunds, SUM(x.n)::bigint AS count
       FROM sales x
       LEFT JOIN credit_packages cp ON x.product_type = 'pack' AND cp.id = x.product_id
       LEFT JOIN plans pl ON x.product_type = 'plan' AND pl.id = x.product_id
      GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4`,
    { g, from, to, fromDay, toDay },
  );
  return (rows as Array<{ period_start: Date; currency: string; product_type: 'pack' | 'plan'; product_id: string; product_name: string; gross: number; refunds: number; count: number }>).map((r) => ({
    periodStart: r.period_start,
    currency: r.currency,
    productType: r.product_type,
    productId: r.product_id,
    productName: r.product_name,
    gross: r.gross,
    refunds: r.refunds,
    count: r.count,
  }));
}

export interface LiabilityRows {
  /** Unspent, unexpired credits of purchases (their purchase and bonus lots) and their value, per currency. */
  deferred: Array<{ currency: string; millicredits: number; valueMinor: number; payments: number }>;
  /** Unexpired lot remainders per source (held included), and how much of it holds reserve. */
  bySource: Array<{ source: string; remaining: number; held: number; lots: number }>;
  /** Remainders of lots past their expiry that the sweeper has not moved yet. */
  expiredUnswept: number;
  /** Refund debt of user accounts (already counted out of the balances). */
  debt: number;
}

/**
 * Credit liability at `now`. A purchase's credits (its `purchase` lot and the pack's `bonus` lot)
 * are valued at what was paid for them: remaining × amount paid ÷ credits sold, rounded per lot
 * to a minor unit (a refund takes back the same share of credits as of money, so this is the
 * unrefunded money not yet earned: deferred revenue).
 */
export async function liabilityRows(db: Db, now: Date): Promise<LiabilityRows> {
  const [deferred, bySource, rest] = await Promise.all([
    db.raw(
      `SELECT p.currency, SUM(l.remaining)::bigint AS millicredits,
              SUM(round(l.remaining::numeric * p.amount_cents / (p.credits_millicredits + p.bonus_millicredits)))::bigint AS value_minor,
              COUNT(DISTINCT p.id)::bigint AS payments
         FROM lots l JOIN transfers t ON t.id = l.transfer_id AND t.reference_type = 'payment'
         JOIN payments p ON p.id::text = t.reference_id
        WHERE l.remaining > 0 AND (l.expires_at IS NULL OR l.expires_at > :now) AND t.kind IN ('purchase', 'bonus')
        GROUP BY p.currency ORDER BY p.currency`,
      { now },
    ),
    db.raw(
      `SELECT source, SUM(remaining)::bigint AS remaining, SUM(held)::bigint AS held, COUNT(*)::bigint AS lots
         FROM lots WHERE remaining > 0 AND (expires_at IS NULL OR expires_at > :now) GROUP BY source ORDER BY source`,
      { now },
    ),
    db.raw(
      `SELECT COALESCE((SELECT SUM(remaining) FROM lots WHERE remaining > 0 AND expires_at <= :now), 0)::bigint AS expired_unswept,
              COALESCE((SELECT SUM(debt) FROM accounts WHERE code IS NULL), 0)::bigint AS debt`,
      { now },
    ),
  ]);
  const r = rest.rows[0] as { expired_unswept: number; debt: number };
  return {
    deferred: (deferred.rows as Array<{ currency: string; millicredits: number; value_minor: number; payments: number }>).map((d) => ({
      currency: d.currency,
      millicredits: d.millicredits,
      valueMinor: d.value_minor,
      payments: d.payments,
    })),
    bySource: bySource.rows as LiabilityRows['bySource'],
    expiredUnswept: r.expired_unswept,
    debt: r.debt,
  };
}

/** Credits expired in [from, to) per period and the source of the lot they expired from. */
export async function breakageRows(db: Db, from: Date, to: Date, g: ReportGranularity): Promise<Array<{ periodStart: Date; source: string; millicredits: number }>> {
  const { rows } = await db.raw(
    `SELECT ${period('t.created_at')} AS period_start, l.source, SUM(a.amount)::bigint AS millicredits
       FROM transfers t JOIN transfer_allocations a ON a.transfer_id = t.id JOIN lots l ON l.id = a.lot_id
      WHERE t.kind = 'expiry' AND t.created_at >= :from AND t.created_at < :to
      GROUP BY 1, 2 ORDER BY 1, 2`,
    { g, from, to },
  );
  return (rows as Array<{ period_start: Date; source: string; millicredits: number }>).map((r) => ({ periodStart: r.period_start, source: r.source, millicredits: r.millicredits }));
}

export interface FunnelRows {
  signups: number;
  purchased: number;
  activeSpenders: number;
  perCurrency: Array<{ currency: string; payingUsers: number; gross: number; refunds: number }>;
  topUsers: Array<{ userId: string; name: string; email: string; currency: string; paidMinor: number; payments: number }>;
}

/**
 * The funnel of users who signed up in [from, to): how many bought (a paid payment or a paid
 * invoice, ever) and how many spent (a usage transfer, ever); and for payments in [from, to) per
 * currency: paying users, gross, refunds (succeeded, by refund date), and the top users by money paid.
 */
export async function funnelRows(db: Db, from: Date, to: Date, top = 10): Promise<FunnelRows> {
  const [cohort, money, topUsers] = await Promise.all([
    db.raw(
      `WITH c AS (SELECT id FROM users WHERE created_at >= :from AND created_at < :to)
       SELECT (SELECT COUNT(*) FROM c)::bigint AS signups,
              (SELECT COUNT(*) FROM c WHERE EXISTS (SELECT 1 FROM payments p WHERE p.user_id = c.id AND p.paid_at IS NOT NULL)
                                         OR EXISTS (SELECT 1 FROM subscriptions s JOIN subscription_invoices i ON i.subscription_id = s.id
                                                     WHERE s.user_id = c.id AND i.paid_at IS NOT NULL AND i.amount_paid > 0))::bigint AS purchased,
              (SELECT COUNT(*) FROM c JOIN accounts a ON a.user_id = c.id
                WHERE EXISTS (SELECT 1 FROM transfers t WHERE t.debit_account_id = a.id AND t.kind = 'usage'))::bigint AS active`,
      { from, to },
    ),
    db.raw(
      `WITH m AS (
         SELECT p.user_id, p.currency, p.amount_cents AS gross, 0::bigint AS refunds FROM payments p WHERE p.paid_at >= :from AND p.paid_at < :to
         UNION ALL
         SELECT s.user_id, i.currency, i.amount_paid, 0 FROM subscription_invoices i JOIN subscriptions s ON s.id = i.subscription_id
          WHERE i.paid_at >= :from AND i.paid_at < :to AND i.amount_paid > 0
         UNION ALL
         SELECT p.user_id, p.currency, 0, r.amount_cents FROM payment_refunds r JOIN payments p ON p.id = r.payment_id
          WHERE r.status = 'succeeded' AND r.created_at >= :from AND r.created_at < :to)
       SELECT currency, COUNT(DISTINCT user_id) FILTER (WHERE gross > 0)::bigint AS paying_users,
              SUM(gross)::bigint AS gross, SUM(refunds)::bigint AS refunds
         FROM m GROUP BY currency ORDER BY currency`,
      { from, to },
    ),
    db.raw(
      `SELECT u.id AS user_id, u.name, u.email, x.currency, x.paid_minor, x.payments
         FROM (SELECT user_id, currency, SUM(amount) AS paid_minor, COUNT(*)::bigint AS payments FROM (
                 SELECT p.user_id, p.currency, p.amount_cents - p.refunded_cents AS amount FROM payments p WHERE p.paid_at >= :from AND p.paid_at < :to
                 UNION ALL
                 SELECT s.user_id, i.currency, i.amount_paid FROM subscription_invoices i JOIN subscriptions s ON s.id = i.subscription_id
                  WHERE i.paid_at >= :from AND i.paid_at < :to AND i.amount_paid > 0) y
               GROUP BY user_id, currency) x
         JOIN users u ON u.id = x.user_id
        ORDER BY x.paid_minor DESC, u.email LIMIT :top`,
      { from, to, top },
    ),
  ]);
  const c = cohort.rows[0] as { signups: number; purchased: number; active: number };
  return {
    signups: c.signups,
    purchased: c.purchased,
    activeSpenders: c.active,
    perCurrency: (money.rows as Array<{ currency: string; paying_users: number; gross: number; refunds: number }>).map((m) => ({
      currency: m.currency,
      payingUsers: m.paying_users,
      gross: m.gross,
      refunds: m.refunds,
    })),
    topUsers: (topUsers.rows as Array<{ user_id: string; name: string; email: string; currency: string; paid_minor: string | number; payments: number }>).map((t) => ({
      userId: t.user_id,
      name: t.name,
      email: t.email,
      currency: t.currency,
      paidMinor: Number(t.paid_minor),
      payments: t.payments,
    })),
  };
}
