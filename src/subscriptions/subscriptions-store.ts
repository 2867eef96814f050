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

interface DbPlanRow {
  id: string;
  name: string;
  credits_millicredits: number;
  interval: PlanInterval;
  amount_cents: number;
  currency: string;
  rollover_cap_millicredits: number;
  rollover_periods: number;
  sort_order: number;
}

const mapPlan = (r: DbPlanRow): Plan => ({
  id: r.id,
  name: r.name,
  creditsMillicredits: Number(r.credits_millicredits),
  interval: r.interval,
  amountCents: Number(r.amount_cents),
  currency: r.currency,
  rolloverCapMillicredits: Number(r.rollover_cap_millicredits),
  rolloverPeriods: r.rollover_periods,
  sortOrder: r.sort_order,
});

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Row = Record<string, any>;

const mapSubscription = (r: Row): Subscription => ({
  id: r.id,
  userId: r.user_id,
  stripeSubscriptionId: r.stripe_subscription_id,
  stripeCustomerId: r.stripe_customer_id,
  planId: r.plan_id,
  status: r.status,
  currentPeriodStart: r.current_period_start,
  currentPeriodEnd: r.current_period_end,
  cancelAtPeriodEnd: r.cancel_at_period_end,
  canceledAt: r.canceled_at,
  endedAt: r.ended_at,
  testClockId: r.test_clock_id,
  duplicateOf: r.duplicate_of ?? null,
  createdAt: r.created_at,
});

const mapPeriod = (r: Row): SubscriptionPeriod => ({
  id: r.id,
  subscriptionId: r.subscription_id,
  periodStart: r.period_start,
  periodEnd: r.period_end,
  planId: r.plan_id,
  grantedMillicredits: Number(r.granted_millicredits),
  grantTransferId: r.grant_transfer_id,
  rolloverMillicredits: Number(r.rollover_millicredits),
  rolloverTransferId: r.rollover_transfer_id,
  rolloverExpiresAt: r.rollover_expires_at,
  source: r.source,
  stripeInvoiceId: r.stripe_invoice_id,
});

const mapInvoice = (r: Row): SubscriptionInvoice => ({
  stripeInvoiceId: r.stripe_invoice_id,
  subscriptionId: r.subscription_id,
  number: r.number,
  status: r.status,
  billingReason: r.billing_reason,
  amountDue: Number(r.amount_due),
  amountPaid: Number(r.amount_paid),
  currency: r.currency,
  periodStart: r.period_start,
  periodEnd: r.period_end,
  attemptCount: r.attempt_count,
  nextPaymentAttempt: r.next_payment_attempt,
  hostedInvoiceUrl: r.hosted_invoice_url,
  created: r.created,
  paidAt: r.paid_at,
  prorationMillicredits: r.proration_millicredits == null ? null : Number(r.proration_millicredits),
  prorationTransferId: r.proration_transfer_id,
});

export async function listPlans(q: Q): Promise<Plan[]> {
  return ((await q('plans').where('active', true).orderBy('sort_order')) as DbPlanRow[]).map(mapPlan);
}

export async function findPlan(q: Q, id: string): Promise<Plan | undefined> {
  const row = (await q('plans').where('id', id).first()) as DbPlanRow | undefined;
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

export interface SubscriptionUpsert {
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
}

/**
 * Inserts or refreshes the mirror of a Stripe subscription; returns it locked (FOR UPDATE). When
 * the user already has another live subscription, the partial unique index
 * `subscriptions_one_live_per_user` refuses this one as live (a concurrent insert waits for the
 * other transaction, then is refused too): it is then recorded with `duplicate_of` naming the live
 * one, and stays a duplicate on every later refresh.
 */
export async function upsertSubscription(trx: Trx, s: SubscriptionUpsert): Promise<Subscription> {
  const row = {
    user_id: s.userId,
    stripe_subscription_id: s.stripeSubscriptionId,
    stripe_customer_id: s.stripeCustomerId,
    plan_id: s.planId,
    status: s.status,
    current_period_start: s.currentPeriodStart,
    current_period_end: s.currentPeriodEnd,
    cancel_at_period_end: s.cancelAtPeriodEnd,
    canceled_at: s.canceledAt,
    ended_at: s.endedAt,
    test_clock_id: s.testClockId,
  };
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
    .insert({
      subscription_id: p.subscriptionId,
      period_start: p.periodStart,
      period_end: p.periodEnd,
      plan_id: p.planId,
      granted_millicredits: p.grantedMillicredits,
      grant_transfer_id: p.grantTransferId,
      source: p.source,
      stripe_invoice_id: p.stripeInvoiceId,
      granted_by: p.grantedBy ?? null,
      reason: p.reason ?? null,
    })
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

export interface InvoiceUpsert {
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
}

export async function findInvoice(q: Q, stripeInvoiceId: string): Promise<SubscriptionInvoice | undefined> {
  const row = await q('subscription_invoices').where({ stripe_invoice_id: stripeInvoiceId }).first();
  return row ? mapInvoice(row) : undefined;
}

/** Inserts or refreshes an invoice; returns it locked. */
export async function upsertInvoice(trx: Trx, i: InvoiceUpsert): Promise<SubscriptionInvoice> {
  const row = {
    stripe_invoice_id: i.stripeInvoiceId,
    subscription_id: i.subscriptionId,
    number: i.number,
    status: i.status,
    billing_reason: i.billingReason,
    amount_due: i.amountDue,
    amount_paid: i.amountPaid,
    currency: i.currency,
    period_start: i.periodStart,
    period_end: i.periodEnd,
    attempt_count: i.attemptCount,
    next_payment_attempt: i.nextPaymentAttempt,
    hosted_invoice_url: i.hostedInvoiceUrl,
    created: i.created,
    paid_at: i.paidAt,
  };
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
