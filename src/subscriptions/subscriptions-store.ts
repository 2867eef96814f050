import { isUniqueViolation, type Db, type Trx } from '../db/database.ts';

/** All SQL of subscriptions: plans, subscriptions, their invoices and credited periods. */

type Q = Db | Trx;

export type PlanInterval = 'month' | 'year';

export interface Plan {
  id: string;
  name: string;
  creditsMillicredits: number;
  interval: PlanInterval;
  amountCents: number;
  currency: string;
  rolloverCapMillicredits: number;
  rolloverPeriods: number;
  sortOrder: number;
}

export interface Subscription {
  id: string;
  userId: string;
  stripeSubscriptionId: string;
  stripeCustomerId: string;
  planId: string;
  status: string;
  currentPeriodStart: Date;
  currentPeriodEnd: Date;
  cancelAtPeriodEnd: boolean;
  canceledAt: Date | null;
  endedAt: Date | null;
  testClockId: string | null;
  /**
   * A second live subscription of the user (two checkouts paid at once): the first one's id. The
   * database allows one live subscription per user (`subscriptions_one_live_per_user`); a
   * duplicate is never credited and is cancelled at Stripe.
   */
  duplicateOf: string | null;
  createdAt: Date;
}

export interface SubscriptionPeriod {
  id: string;
  subscriptionId: string;
  periodStart: Date;
  periodEnd: Date;
  planId: string;
  grantedMillicredits: number;
  grantTransferId: string;
  rolloverMillicredits: number;
  rolloverTransferId: string | null;
  rolloverExpiresAt: Date | null;
  source: 'invoice' | 'admin' | 'schedule';
  stripeInvoiceId: string | null;
}

export interface SubscriptionInvoice {
  stripeInvoiceId: string;
  subscriptionId: string;
  number: string | null;
  status: string;
  billingReason: string | null;
  amountDue: number;
  amountPaid: number;
  currency: string;
  periodStart: Date;
  periodEnd: Date;
  attemptCount: number;
  nextPaymentAttempt: Date | null;
  hostedInvoiceUrl: string | null;
  created: Date;
  paidAt: Date | null;
  prorationMillicredits: number | null;
  prorationTransferId: string | null;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Row = Record<string, any>;

const snake = (field: string) => field.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);

/**
 * Maps rows to domain objects and back, by one list of fields: each field's column is its name in
 * snake_case; `1` marks a bigint column (read back as a string by pg), turned into a number.
 * `satisfies Record<keyof T, 0 | 1>` at each call keeps the list complete.
 */
function rowMapper<T>(fields: Record<keyof T & string, 0 | 1>) {
  const entries = Object.entries(fields) as Array<[keyof T & string, 0 | 1]>;
  return {
    fromRow: (r: Row): T =>
      Object.fromEntries(entries.map(([f, big]) => {
        const v = r[snake(f)];
        return [f, big && v != null ? Number(v) : (v ?? null)];
      })) as T,
    toRow: (o: Partial<T>): Row => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined).map(([k, v]) => [snake(k), v])),
  };
}

const plans = rowMapper<Plan>({
  id: 0, name: 0, creditsMillicredits: 1, interval: 0, amountCents: 1, currency: 0, rolloverCapMillicredits: 1, rolloverPeriods: 0, sortOrder: 0,
} satisfies Record<keyof Plan, 0 | 1>);

const subscriptions = rowMapper<Subscription>({
  id: 0, userId: 0, stripeSubscriptionId: 0, stripeCustomerId: 0, planId: 0, status: 0, currentPeriodStart: 0, currentPeriodEnd: 0,
  cancelAtPeriodEnd: 0, canceledAt: 0, endedAt: 0, testClockId: 0, duplicateOf: 0, createdAt: 0,
} satisfies Record<keyof Subscription, 0 | 1>);

const periods = rowMapper<SubscriptionPeriod & { grantedBy: string | null; reason: string | null }>({
  id: 0, subscriptionId: 0, periodStart: 0, periodEnd: 0, planId: 0, grantedMillicredits: 1, grantTransferId: 0, rolloverMillicredits: 1,
  rolloverTransferId: 0, rolloverExpiresAt: 0, source: 0, stripeInvoiceId: 0, grantedBy: 0, reason: 0,
} satisfies Record<keyof SubscriptionPeriod | 'grantedBy' | 'reason', 0 | 1>);

const invoices = rowMapper<SubscriptionInvoice>({
  stripeInvoiceId: 0, subscriptionId: 0, number: 0, status: 0, billingReason: 0, amountDue: 1, amountPaid: 1, currency: 0, periodStart: 0,
  periodEnd: 0, attemptCount: 0, nextPaymentAttempt: 0, hostedInvoiceUrl: 0, created: 0, paidAt: 0, prorationMillicredits: 1, prorationTransferId: 0,
} satisfies Record<keyof SubscriptionInvoice, 0 | 1>);

const mapPlan = plans.fromRow;
const mapSubscription = subscriptions.fromRow;
const mapInvoice = invoices.fromRow;
const mapPeriod = (r: Row): SubscriptionPeriod => {
  const { grantedBy: _by, reason: _reason, ...period } = periods.fromRow(r);
  return period;
};

export async function listPlans(q: Q): Promise<Plan[]> {
  return (await q('plans').where('active', true).orderBy('sort_order')).map(mapPlan);
}

export async function findPlan(q: Q, id: string): Promise<Plan | undefined> {
  const row = await q('plans').where('id', id).first();
  return row ? mapPlan(row) : undefined;
}

/** The name and address emails go to. */
export async function userContact(q: Q, userId: string): Promise<{ email: string; name: string } | undefined> {
  return q('users').where({ id: userId }).first('email', 'name');
}

/** The user id of a Stripe customer Tally created (payments' `stripe_customers`). */
export async function userOfCustomer(q: Q, customerId: string): Promise<string | undefined> {
  const row = await q('stripe_customers').where({ customer_id: customerId }).first('user_id');
  return row?.user_id as string | undefined;
}

/** What mirroring a Stripe subscription writes (the rest is the database's). */
export type SubscriptionUpsert = Omit<Subscription, 'id' | 'duplicateOf' | 'createdAt'>;

/**
 * Inserts or refreshes the mirror of a Stripe subscription; returns it locked (FOR UPDATE). When
 * the user already has another live subscription, the partial unique index
 * `subscriptions_one_live_per_user` refuses this one as live (a concurrent insert waits for the
 * other transaction, then is refused too): it is then recorded with `duplicate_of` naming the live
 * one, and stays a duplicate on every later refresh.
 */
export async function upsertSubscription(trx: Trx, s: SubscriptionUpsert): Promise<Subscription> {
  const row = subscriptions.toRow(s);
  const upsert = (q: Trx, extra: { duplicate_of?: string }) =>
    q('subscriptions')
      .insert({ ...row, ...extra })
      .onConflict('stripe_subscription_id')
      .merge({ ...row, ...extra, updated_at: q.fn.now() });
  try {
    // A savepoint: the refusal below must leave the caller's transaction usable.
    await trx.transaction((sp) => upsert(sp, {}));
  } catch (err) {
    if (!isUniqueViolation(err, 'subscriptions_one_live_per_user')) throw err;
    const live = await trx('subscriptions')
      .where({ user_id: s.userId })
      .whereIn('status', ONE_LIVE_STATUSES)
      .whereNull('duplicate_of')
      .whereNot({ stripe_subscription_id: s.stripeSubscriptionId })
      .first('id');
    if (!live) throw err;
    await upsert(trx, { duplicate_of: live.id as string });
  }
  return mapSubscription(await trx('subscriptions').where({ stripe_subscription_id: s.stripeSubscriptionId }).forUpdate().first());
}

export async function findSubscriptionByStripeId(q: Q, stripeId: string): Promise<Subscription | undefined> {
  const row = await q('subscriptions').where({ stripe_subscription_id: stripeId }).first();
  return row ? mapSubscription(row) : undefined;
}

/** Statuses in which a user "has" a subscription (a second checkout is refused). */
export const LIVE_STATUSES = ['active', 'past_due', 'trialing', 'incomplete', 'unpaid', 'paused'];

/** Statuses of which the database allows one per user (index `subscriptions_one_live_per_user`). */
export const ONE_LIVE_STATUSES = ['active', 'trialing', 'past_due', 'unpaid', 'paused'];

/** The user's current subscription: the live one (never a duplicate), else the most recent. */
export async function currentSubscription(q: Q, userId: string): Promise<Subscription | undefined> {
  const row = await q('subscriptions')
    .where({ user_id: userId })
    .orderByRaw(`(duplicate_of IS NULL) DESC, (status = ANY(?)) DESC, created_at DESC`, [LIVE_STATUSES])
    .first();
  return row ? mapSubscription(row) : undefined;
}

export async function listLiveYearly(q: Q): Promise<Subscription[]> {
  const rows = await q('subscriptions as s')
    .join('plans as p', 'p.id', 's.plan_id')
    .where('p.interval', 'year')
    .whereIn('s.status', ['active', 'trialing'])
    .whereNull('s.duplicate_of')
    .select('s.*');
  return rows.map(mapSubscription);
}

/**
 * Claims a period for crediting: inserts its row unless one exists for (subscription, start).
 * A concurrent claim waits on the unique index and then gets undefined: exactly one wins.
 */
export async function claimPeriod(trx: Trx, p: Omit<SubscriptionPeriod, 'id' | 'rolloverMillicredits' | 'rolloverTransferId' | 'rolloverExpiresAt'> & { grantedBy?: string | null; reason?: string | null }): Promise<SubscriptionPeriod | undefined> {
  const rows = await trx('subscription_periods')
    .insert(periods.toRow({ ...p, grantedBy: p.grantedBy ?? null, reason: p.reason ?? null }))
    .onConflict(['subscription_id', 'period_start'])
    .ignore()
    .returning('*');
  return rows[0] ? mapPeriod(rows[0]) : undefined;
}

export async function setRollover(trx: Trx, periodId: string, millicredits: number, transferId: string, expiresAt: Date): Promise<void> {
  await trx('subscription_periods').where({ id: periodId }).update({ rollover_millicredits: millicredits, rollover_transfer_id: transferId, rollover_expires_at: expiresAt });
}

export async function setPeriodPlan(trx: Trx, periodId: string, planId: string): Promise<void> {
  await trx('subscription_periods').where({ id: periodId }).update({ plan_id: planId });
}

export async function listPeriods(q: Q, subscriptionId: string): Promise<SubscriptionPeriod[]> {
  return (await q('subscription_periods').where({ subscription_id: subscriptionId }).orderBy('period_start', 'desc')).map(mapPeriod);
}

/** The credited period that contains `at` (start ≤ at < end), if any. */
export async function periodAt(q: Q, subscriptionId: string, at: Date): Promise<SubscriptionPeriod | undefined> {
  const row = await q('subscription_periods').where({ subscription_id: subscriptionId }).where('period_start', '<=', at).where('period_end', '>', at).orderBy('period_start', 'desc').first();
  return row ? mapPeriod(row) : undefined;
}

/** What mirroring a Stripe invoice writes (the proration credit is set apart, by setProration). */
export type InvoiceUpsert = Omit<SubscriptionInvoice, 'prorationMillicredits' | 'prorationTransferId'>;

export async function findInvoice(q: Q, stripeInvoiceId: string): Promise<SubscriptionInvoice | undefined> {
  const row = await q('subscription_invoices').where({ stripe_invoice_id: stripeInvoiceId }).first();
  return row ? mapInvoice(row) : undefined;
}

/** Inserts or refreshes an invoice; returns it locked. */
export async function upsertInvoice(trx: Trx, i: InvoiceUpsert): Promise<SubscriptionInvoice> {
  const row = invoices.toRow(i);
  await trx('subscription_invoices').insert(row).onConflict('stripe_invoice_id').merge();
  return mapInvoice(await trx('subscription_invoices').where({ stripe_invoice_id: i.stripeInvoiceId }).forUpdate().first());
}

export async function setProration(trx: Trx, invoiceId: string, millicredits: number, transferId: string): Promise<void> {
  await trx('subscription_invoices').where({ stripe_invoice_id: invoiceId }).update({ proration_millicredits: millicredits, proration_transfer_id: transferId });
}

export async function listInvoices(q: Q, subscriptionId: string, limit = 24): Promise<SubscriptionInvoice[]> {
  return (await q('subscription_invoices').where({ subscription_id: subscriptionId }).orderBy('created', 'desc').limit(limit)).map(mapInvoice);
}

/** Proration grants of invoices whose credits belong to the period [start, end). */
export async function prorationsIn(q: Q, subscriptionId: string, start: Date, end: Date): Promise<SubscriptionInvoice[]> {
  return (
    await q('subscription_invoices')
      .where({ subscription_id: subscriptionId })
      .whereNotNull('proration_transfer_id')
      .where('period_end', '>', start)
      .where('period_end', '<=', end)
  ).map(mapInvoice);
}
