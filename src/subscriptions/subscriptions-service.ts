import type Stripe from 'stripe';
import type { Config } from '../config.ts';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { AppError, ConflictError, NotFoundError, ValidationError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Logger } from '../logger.ts';
import type { StripeCustomers } from '../payments/stripe-customers.ts';
import type { MoreHandler } from '../payments/stripe-webhook.ts';
import * as store from './subscriptions-store.ts';
import type { Plan, Subscription, SubscriptionInvoice, SubscriptionPeriod } from './subscriptions-store.ts';

export type { Plan, Subscription, SubscriptionInvoice, SubscriptionPeriod } from './subscriptions-store.ts';

export interface SubscriptionsDeps {
  db: Db;
  ledger: Ledger;
  stripe: Stripe;
  customers: StripeCustomers;
  config: Pick<Config, 'appUrl'>;
  logger: Logger;
  /**
   * The subscription emails (renewal receipt; payment failed with the fix-card link), sent through
   * the notification outbox (subscription-emails.ts). Called in the transaction that credits or
   * records the invoice, so the outbox row commits with it. Unset: no email.
   */
  notify?: SubscriptionNotifier;
}

/** The subscription emails (issue 13's outbox sends them). Money in cents, credits in millicredits. */
export interface SubscriptionNotifier {
  renewalReceipt(trx: Trx, e: { userId: string; planName: string; millicredits: number; rolloverMillicredits: number; amountCents: number; currency: string; invoiceNumber: string | null; periodEnd: Date }): Promise<void>;
  paymentFailed(trx: Trx, e: { invoiceId: string; userId: string; planName: string; amountCents: number; currency: string; attempt: number; nextAttemptAt: Date | null; fixCardUrl: string }): Promise<void>;
}

/** What /account and `GET /api/subscriptions/current` show. Credits in millicredits. */
export interface SubscriptionSummary {
  subscription: Subscription;
  plan: Plan;
  /** The plan billed from the next renewal, when a downgrade is waiting. */
  nextPlan: Plan | null;
  period: SubscriptionPeriod | null;
  /** This period's grant plus upgrade prorations. */
  creditsGrantedThisPeriod: number;
  /** Unspent credits of this period's grants, and when they expire. */
  periodCreditsLeft: number;
  periodCreditsExpireAt: Date | null;
  /** Rolled-over credits of this period, unspent, and when they expire. */
  rolloverCredits: number;
  rolloverCreditsLeft: number;
  rolloverExpiresAt: Date | null;
}

const fromUnix = (s: number) => new Date(s * 1000);
/** The outcome of syncing a user's second live subscription. */
const DUPLICATE = 'duplicate_subscription';
const idOf = (v: string | { id: string } | null | undefined): string | null => (v == null ? null : typeof v === 'string' ? v : v.id);

/** `date` + `n` calendar months in UTC, clamped to the month's end (as Stripe's billing anchors). */
export function addMonths(date: Date, n: number): Date {
  const day = date.getUTCDate();
  const t = new Date(Date.UTC(date.getUTCFullYear(), date.getUTCMonth() + n, 1, date.getUTCHours(), date.getUTCMinutes(), date.getUTCSeconds(), date.getUTCMilliseconds()));
  const last = new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth() + 1, 0)).getUTCDate();
  t.setUTCDate(Math.min(day, last));
  return t;
}

/**
 * `floor(millicredits × part / whole)` on integers (BigInt): an upgrade's prorated credit
 * difference, rounded down to a millicredit.
 */
export function prorate(millicredits: number, partSeconds: number, wholeSeconds: number): number {
  if (millicredits <= 0 || partSeconds <= 0 || wholeSeconds <= 0) return 0;
  return Number((BigInt(millicredits) * BigInt(Math.min(partSeconds, wholeSeconds))) / BigInt(wholeSeconds));
}

/** The Stripe lookup key of a plan's recurring price (a new price whenever amount or interval changes). */
export function priceLookupKey(plan: Plan): string {
  return `tally_plan_${plan.id}_${plan.interval}_${plan.amountCents}${plan.currency}`;
}

/**
 * Subscriptions on Stripe Billing: plans, Checkout in `mode: subscription`, plan changes,
 * cancellation, the customer portal, and credits that follow paid invoices exactly once per
 * (subscription, period).
 *
 * Every Stripe event about a subscription is handled by reading the subscription and invoice back
 * from Stripe (Stripe docs, "Using webhooks with subscriptions": events may arrive out of order),
 * then, in one transaction, mirroring them and crediting what is paid. The credit of a period is
 * claimed by inserting its `subscription_periods` row (unique per subscription and period start)
 * in the transaction of the grant, so webhook retries, out-of-order events, the success page and
 * an admin's manual grant all meet at one row.
 *
 * At a renewal, the subscription's lots whose period ended are ended now (an `expiry` transfer;
 * with a test clock Stripe's time runs ahead of ours), and the unspent part of the ending period's
 * grant (what expired of it) is granted again as rolled-over credits, up to the plan's cap, living
 * `rollover_periods` more periods.
 */
export function createSubscriptions(deps: SubscriptionsDeps) {
  const { db, ledger, stripe, customers, config, logger } = deps;
  const prices = new Map<string, Promise<string>>();

  /** The Stripe price of a plan, found by lookup key or created once. */
  function priceFor(plan: Plan): Promise<string> {
    const key = priceLookupKey(plan);
    let p = prices.get(key);
    if (!p) {
      p = (async () => {
        const found = await stripe.prices.list({ lookup_keys: [key], active: true, limit: 1 });
        if (found.data[0]) return found.data[0].id;
        const created = await stripe.prices.create(
          {
            currency: plan.currency,
            unit_amount: plan.amountCents,
            recurring: { interval: plan.interval },
            lookup_key: key,
            product_data: { name: `Tally ${plan.name}`, metadata: { planId: plan.id } },
            metadata: { planId: plan.id },
          },
          { idempotencyKey: `tally-price-${key}` },
        );
        return created.id;
      })();
      p.catch(() => prices.delete(key));
      prices.set(key, p);
    }
    return p;
  }

  /** The plan a Stripe price sells (its `metadata.planId`); string ids must be in `known` (read before the transaction). */
  async function planOfPrice(q: Db | Trx, price: Stripe.Price | string | null | undefined, known?: Map<string, Stripe.Price>): Promise<Plan> {
    const obj = typeof price === 'string' ? known?.get(price) : price;
    const planId = obj?.metadata?.planId;
    const plan = planId ? await store.findPlan(q, planId) : undefined;
    if (!plan) throw new AppError(502, 'unknown_plan_price', 'Bad gateway', `Stripe price ${typeof price === 'string' ? price : (obj?.id ?? '?')} is not one of Tally's plans.`);
    return plan;
  }

  async function livePlan(id: string): Promise<Plan> {
    const plan = await store.findPlan(db, id);
    if (!plan) throw new ValidationError([{ field: 'body.planId', message: `no plan "${id}"` }]);
    return plan;
  }

  // ------------------------------------------------------------------------------------------
  // Crediting periods

  /** Millicredits that expired from `lotTransferId`'s lot (by the sweeper or by a renewal). */
  async function expiredOf(userId: string, lotId: string, since: Date): Promise<number> {
    let sum = 0;
    let cursor: string | null = null;
    do {
      const page = await ledger.listTransfers(userId, { kind: 'expiry', from: since }, { limit: 200, cursor });
      for (const t of page.items) if (t.reference?.type === 'lot' && t.reference.id === lotId) sum += -t.amount;
      cursor = page.nextCursor;
    } while (cursor);
    return sum;
  }

  /** Ends the lot of `transferId` now (if anything is left); returns what expired now. */
  async function endLot(trx: Trx, transferId: string | null, reason: string): Promise<{ lotId: string; expiredNow: number; createdAt: Date } | null> {
    if (!transferId) return null;
    const lot = await ledger.findLotByTransfer(transferId, trx);
    if (!lot) return null;
    const { expired } = await ledger.expireLot({ lotId: lot.id, actor: 'system', reason }, trx);
    return { lotId: lot.id, expiredNow: expired, createdAt: lot.createdAt };
  }

  /**
   * Credits period [start, end) of `sub` with `plan`'s credits, once: claims the period row, grants
   * the `subscription_grant` lot expiring at `end`, ends the lots of periods that ended by `start`,
   * and rolls the ending period's unspent grant over (capped). Returns whether credits came now.
   */
  async function creditPeriod(
    trx: Trx,
    sub: Subscription,
    plan: Plan,
    start: Date,
    end: Date,
    source: SubscriptionPeriod['source'],
    extra: { invoiceId?: string | null; grantedBy?: string | null; reason?: string | null } = {},
  ): Promise<boolean> {
    const grantTransferId = `subscription_grant:${sub.id}:${start.toISOString()}`;
    const claimed = await store.claimPeriod(trx, {
      subscriptionId: sub.id,
      periodStart: start,
      periodEnd: end,
      planId: plan.id,
      grantedMillicredits: plan.creditsMillicredits,
      grantTransferId,
      source,
      stripeInvoiceId: extra.invoiceId ?? null,
      grantedBy: extra.grantedBy ?? null,
      reason: extra.reason ?? null,
    });
    if (!claimed) return false;

    // Periods that ended by `start`: end their lots now; the ending one's grant rolls over.
    const periods = await store.listPeriods(trx, sub.id);
    const ending = periods.find((p) => p.periodEnd.getTime() === start.getTime());
    let unspent = 0;
    for (const p of periods) {
      if (p.id === claimed.id) continue;
      if (p.periodEnd.getTime() <= start.getTime()) {
        const lots = [p.grantTransferId, ...(await store.prorationsIn(trx, sub.id, p.periodStart, p.periodEnd)).map((i) => i.prorationTransferId)];
        for (const tid of lots) {
          const ended = await endLot(trx, tid, 'Subscription period ended');
          if (ended && p === ending) unspent += ended.expiredNow + (await expiredOf(sub.userId, ended.lotId, ended.createdAt));
        }
      }
      if (p.rolloverExpiresAt && p.rolloverExpiresAt.getTime() <= start.getTime()) await endLot(trx, p.rolloverTransferId, 'Rolled-over credits expired');
    }

    const reference = { type: 'subscription', id: sub.id };
    await ledger.grant(
      {
        transferId: grantTransferId,
        userId: sub.userId,
        millicredits: plan.creditsMillicredits,
        kind: 'subscription_grant',
        actor: source === 'admin' ? (extra.grantedBy ?? 'admin') : 'stripe',
        reason: source === 'admin' ? `${plan.name} credits granted by hand: ${extra.reason ?? ''}`.trim() : `${plan.name} credits for the period`,
        reference,
        expiresAt: end,
      },
      trx,
    );
    if (ending) {
      const endingPlan = (await store.findPlan(trx, ending.planId)) ?? plan;
      const rollover = Math.min(unspent, endingPlan.rolloverCapMillicredits);
      if (rollover > 0) {
        // Credit periods are months (a yearly plan grants monthly too).
        const expiresAt = endingPlan.rolloverPeriods === 1 ? end : addMonths(start, endingPlan.rolloverPeriods);
        const transferId = `subscription_rollover:${sub.id}:${start.toISOString()}`;
        await ledger.grant(
          { transferId, userId: sub.userId, millicredits: rollover, kind: 'rollover', actor: 'system', reason: `Rolled over from the ${endingPlan.name} period`, reference, expiresAt },
          trx,
        );
        await store.setRollover(trx, claimed.id, rollover, transferId, expiresAt);
      }
    }
    logger.info({ subscriptionId: sub.id, periodStart: start, source }, 'subscription period credited');
    return true;
  }

  /** The credit period of a billing period starting at `start`: the billing period, or its first month for a yearly plan. */
  function creditWindow(plan: Plan, start: Date, billingEnd: Date): { start: Date; end: Date } {
    if (plan.interval === 'month') return { start, end: billingEnd };
    return monthOf(start, billingEnd, start);
  }

  /** The month of billing period [anchor, billingEnd) that contains `at` (months counted from the anchor, clamped to month ends). */
  function monthOf(anchor: Date, billingEnd: Date, at: Date): { start: Date; end: Date } {
    let start = anchor;
    for (let k = 1; k <= 12; k++) {
      const end = addMonths(anchor, k);
      if (end > at || end >= billingEnd) return { start, end: end < billingEnd ? end : billingEnd };
      start = end;
    }
    return { start, end: billingEnd };
  }

  /** Stripe's "now" for a subscription: its test clock's time, or ours. */
  async function stripeNow(sub: Subscription): Promise<Date> {
    return sub.testClockId ? fromUnix((await stripe.testHelpers.testClocks.retrieve(sub.testClockId)).frozen_time) : new Date();
  }

  // ------------------------------------------------------------------------------------------
  // Mirroring Stripe

  /** Mirrors a Stripe subscription (fresh from Stripe) in one transaction; returns the local row. */
  async function mirror(trx: Trx, s: Stripe.Subscription): Promise<Subscription | undefined> {
    const customerId = idOf(s.customer)!;
    const userId = await store.userOfCustomer(trx, customerId);
    if (!userId) return undefined;
    const item = s.items.data[0]!;
    const plan = await planOfPrice(trx, item.price);
    return store.upsertSubscription(trx, {
      userId,
      stripeSubscriptionId: s.id,
      stripeCustomerId: customerId,
      planId: plan.id,
      status: s.status,
      currentPeriodStart: fromUnix(item.current_period_start),
      currentPeriodEnd: fromUnix(item.current_period_end),
      cancelAtPeriodEnd: s.cancel_at_period_end,
      canceledAt: s.canceled_at ? fromUnix(s.canceled_at) : null,
      endedAt: s.ended_at ? fromUnix(s.ended_at) : null,
      testClockId: idOf(s.test_clock as string | { id: string } | null),
    });
  }

  /** Records `inv` and credits what it paid for: a period (create/cycle) or an upgrade's difference. */
  async function applyInvoice(trx: Trx, sub: Subscription, inv: Stripe.Invoice, prices: Map<string, Stripe.Price>): Promise<string> {
    const lines = inv.lines.data;
    const main = lines.find((l) => !l.parent?.subscription_item_details?.proration) ?? lines[0];
    const period = main?.period ?? { start: inv.period_start, end: inv.period_end };
    const before = await store.findInvoice(trx, inv.id);
    const row = await store.upsertInvoice(trx, {
      stripeInvoiceId: inv.id,
      subscriptionId: sub.id,
      number: inv.number,
      status: inv.status ?? 'draft',
      billingReason: inv.billing_reason,
      amountDue: inv.amount_due,
      amountPaid: inv.amount_paid,
      currency: inv.currency,
      periodStart: fromUnix(period.start),
      periodEnd: fromUnix(period.end),
      attemptCount: inv.attempt_count,
      nextPaymentAttempt: inv.next_payment_attempt ? fromUnix(inv.next_payment_attempt) : null,
      hostedInvoiceUrl: inv.hosted_invoice_url ?? null,
      created: fromUnix(inv.created),
      paidAt: inv.status_transitions?.paid_at ? fromUnix(inv.status_transitions.paid_at) : null,
    });
    if (inv.status !== 'paid') {
      if (inv.status === 'open' && inv.attempt_count > (before?.attemptCount ?? 0)) {
        const plan = await planOfPrice(trx, main?.pricing?.price_details?.price ?? null, prices);
        await deps.notify?.paymentFailed(trx, {
          invoiceId: inv.id,
          userId: sub.userId,
          planName: plan.name,
          amountCents: inv.amount_due,
          currency: inv.currency,
          attempt: inv.attempt_count,
          nextAttemptAt: row.nextPaymentAttempt,
          fixCardUrl: `${config.appUrl}/account#subscription`,
        });
      }
      return `invoice_${inv.status ?? 'draft'}`;
    }
    if (inv.billing_reason === 'subscription_create' || inv.billing_reason === 'subscription_cycle') {
      const plan = await planOfPrice(trx, main?.pricing?.price_details?.price ?? null, prices);
      const w = creditWindow(plan, row.periodStart, row.periodEnd);
      const credited = await creditPeriod(trx, sub, plan, w.start, w.end, 'invoice', { invoiceId: inv.id });
      if (credited && inv.billing_reason === 'subscription_cycle' && deps.notify) {
        const period = (await store.listPeriods(trx, sub.id))[0]!;
        await deps.notify.renewalReceipt(trx, {
          userId: sub.userId,
          planName: plan.name,
          millicredits: period.grantedMillicredits,
          rolloverMillicredits: period.rolloverMillicredits,
          amountCents: inv.amount_paid,
          currency: inv.currency,
          invoiceNumber: inv.number,
          periodEnd: period.periodEnd,
        });
      }
      return credited ? 'period_credited' : 'period_already_credited';
    }
    if (inv.billing_reason === 'subscription_update') return applyProration(trx, sub, row, inv, prices);
    return 'invoice_recorded';
  }

  /**
   * An upgrade's proration invoice, paid: grants (new plan − old plan credits) × the share of the
   * period left, rounded down to a millicredit, once per invoice, as part of the period's credits.
   */
  async function applyProration(trx: Trx, sub: Subscription, row: SubscriptionInvoice, inv: Stripe.Invoice, prices: Map<string, Stripe.Price>): Promise<string> {
    if (row.prorationTransferId) return 'proration_already_credited';
    const lines = inv.lines.data.filter((l) => l.parent?.subscription_item_details?.proration);
    const credit = lines.find((l) => l.amount < 0);
    const debit = lines.find((l) => l.amount > 0);
    if (!credit || !debit) return 'proration_without_upgrade';
    const oldPlan = await planOfPrice(trx, credit.pricing?.price_details?.price ?? null, prices);
    const newPlan = await planOfPrice(trx, debit.pricing?.price_details?.price ?? null, prices);
    const period = await store.periodAt(trx, sub.id, fromUnix(debit.period.start));
    if (!period) return 'proration_outside_credited_period';
    const difference = newPlan.creditsMillicredits - oldPlan.creditsMillicredits;
    const left = debit.period.end - debit.period.start;
    const whole = Math.round((period.periodEnd.getTime() - period.periodStart.getTime()) / 1000);
    const millicredits = prorate(difference, left, whole);
    if (millicredits <= 0) return 'proration_nothing_to_credit';
    const transferId = `subscription_proration:${inv.id}`;
    await ledger.grant(
      { transferId, userId: sub.userId, millicredits, kind: 'subscription_grant', actor: 'stripe', reason: `Upgrade to ${newPlan.name}: prorated credits`, reference: { type: 'subscription', id: sub.id }, expiresAt: period.periodEnd },
      trx,
    );
    await store.setProration(trx, inv.id, millicredits, transferId);
    await store.setPeriodPlan(trx, period.id, newPlan.id);
    return 'proration_credited';
  }

  /** What a sync needs from Stripe, read outside any transaction: the subscription and invoices. */
  interface Fetched {
    subscription: Stripe.Subscription;
    invoices: Stripe.Invoice[];
    /** The prices the invoices' lines name, by id. */
    prices: Map<string, Stripe.Price>;
  }

  /** Reads subscription `stripeSubscriptionId`, its latest invoice and `invoiceId` (if given) back from Stripe. */
  async function fetchFromStripe(stripeSubscriptionId: string, invoiceId: string | null): Promise<Fetched> {
    const subscription = await stripe.subscriptions.retrieve(stripeSubscriptionId, { expand: ['latest_invoice'] });
    const invoices: Stripe.Invoice[] = [];
    if (subscription.latest_invoice && typeof subscription.latest_invoice === 'object') invoices.push(subscription.latest_invoice);
    if (invoiceId && !invoices.some((i) => i.id === invoiceId)) invoices.push(await stripe.invoices.retrieve(invoiceId));
    const prices = new Map<string, Stripe.Price>();
    for (const item of subscription.items.data) prices.set(item.price.id, item.price);
    for (const inv of invoices) {
      for (const line of inv.lines.data) {
        const id = idOf(line.pricing?.price_details?.price as string | { id: string } | null | undefined);
        if (id && !prices.has(id)) prices.set(id, await stripe.prices.retrieve(id));
      }
    }
    return { subscription, invoices, prices };
  }

  /** Mirrors fetched Stripe state and credits what is paid, in one transaction. Idempotent. */
  async function applyFetched(fetched: Fetched, trx?: Trx): Promise<string> {
    return inTransaction(trx ?? db, async (t) => {
      const sub = await mirror(t, fetched.subscription);
      if (!sub) return 'ignored:unknown_customer';
      // A second live subscription (two checkouts paid at once): no credits; cancelled at Stripe
      // once this transaction committed (cancelDuplicate).
      if (sub.duplicateOf) return DUPLICATE;
      const outcomes = [];
      for (const inv of fetched.invoices) outcomes.push(await applyInvoice(t, sub, inv, fetched.prices));
      return outcomes.length > 0 ? outcomes.join(',') : 'synced';
    });
  }

  const syncFromStripe = async (stripeSubscriptionId: string, invoiceId: string | null) => applyFetched(await fetchFromStripe(stripeSubscriptionId, invoiceId));

  /**
   * Cancels a duplicate subscription at Stripe now (idempotent), crediting its unused time to the
   * customer's Stripe balance (`prorate` + `invoice_now`: Stripe applies that credit to the next
   * invoice of the subscription they keep), then mirrors it as cancelled.
   */
  async function cancelDuplicate(stripeSubscriptionId: string): Promise<void> {
    const s = await stripe.subscriptions.retrieve(stripeSubscriptionId);
    if (s.status !== 'canceled') {
      await stripe.subscriptions.cancel(stripeSubscriptionId, { prorate: true, invoice_now: true });
      logger.warn({ stripeSubscriptionId }, 'a second live subscription of one user was cancelled at Stripe');
    }
    await syncFromStripe(stripeSubscriptionId, null);
  }

  const subscriptionOfInvoice = (inv: Stripe.Invoice): string | null => idOf(inv.parent?.subscription_details?.subscription ?? null);

  /**
   * Months 2–12 of yearly plans: credits each month whose start has come (at `now`, or at the
   * test clock's time for subscriptions on one). Run by the sweeper and on test-clock events.
   * Returns how many periods were credited.
   */
  async function creditDueMonths(now: Date = new Date(), onlyClock?: string): Promise<number> {
    let count = 0;
    const clocks = new Map<string, Date>();
    for (const sub of await store.listLiveYearly(db)) {
      if (onlyClock !== undefined && sub.testClockId !== onlyClock) continue;
      let at = now;
      if (sub.testClockId) {
        if (!clocks.has(sub.testClockId)) clocks.set(sub.testClockId, await stripeNow(sub));
        at = clocks.get(sub.testClockId)!;
      }
      count += await inTransaction(db, async (trx) => {
        const plan = (await store.findPlan(trx, sub.planId))!;
        let n = 0;
        for (let guard = 0; guard < 13; guard++) {
          const latest = (await store.listPeriods(trx, sub.id))[0];
          if (!latest || latest.periodEnd > at || latest.periodEnd >= sub.currentPeriodEnd) break;
          const w = monthOf(sub.currentPeriodStart, sub.currentPeriodEnd, latest.periodEnd);
          if (!(await creditPeriod(trx, sub, plan, w.start, w.end, 'schedule'))) break;
          n++;
        }
        return n;
      });
    }
    return count;
  }

  /** Which subscription (and invoice) an event is about; null when it is not a subscription's. */
  function targetOf(event: Stripe.Event): { subscription: string; invoice: string | null } | null {
    const obj = event.data.object as unknown as Record<string, unknown>;
    if (event.type.startsWith('checkout.session.')) {
      const session = obj as unknown as Stripe.Checkout.Session;
      const sub = session.mode === 'subscription' ? idOf(session.subscription) : null;
      return sub ? { subscription: sub, invoice: idOf(session.invoice) } : null;
    }
    if (event.type.startsWith('customer.subscription.')) return { subscription: String(obj.id), invoice: null };
    if (event.type.startsWith('invoice.')) {
      const sub = subscriptionOfInvoice(obj as unknown as Stripe.Invoice);
      return sub ? { subscription: sub, invoice: String(obj.id) } : null;
    }
    return null;
  }

  const syncHandler: MoreHandler = {
    prefetch: async (event) => {
      const target = targetOf(event);
      return target ? fetchFromStripe(target.subscription, target.invoice) : null;
    },
    handle: async (event, trx, fetched) => {
      if (!fetched) return event.type.startsWith('checkout.session.') ? null : 'ignored:not_a_subscription';
      return applyFetched(fetched as Fetched, trx);
    },
    after: async (_event, outcome, fetched) => {
      if (outcome === DUPLICATE) await cancelDuplicate((fetched as Fetched).subscription.id);
    },
  };

  /**
   * Stripe event handlers, by type (wired into the webhook, src/payments). Each reads the
   * subscription back from Stripe before the event's transaction, then mirrors and credits in it.
   * A `checkout.session.completed` of a one-off payment answers null: it is the payments feature's.
   */
  const webhookHandlers: Record<string, MoreHandler> = {
    'checkout.session.completed': syncHandler,
    'customer.subscription.created': syncHandler,
    'customer.subscription.updated': syncHandler,
    'customer.subscription.deleted': syncHandler,
    'invoice.paid': syncHandler,
    'invoice.payment_succeeded': syncHandler,
    'invoice.payment_failed': syncHandler,
    'invoice.finalized': syncHandler,
    // A test clock finished advancing: months of yearly plans on it may have come due.
    'test_helpers.test_clock.ready': {
      prefetch: async (event) => creditDueMonths(new Date(), (event.data.object as { id: string }).id),
      handle: async (_event, _trx, n) => `months_credited:${String(n)}`,
    },
  };

  async function liveSubscription(userId: string): Promise<Subscription> {
    const sub = await store.currentSubscription(db, userId);
    if (!sub || !store.LIVE_STATUSES.includes(sub.status)) throw new NotFoundError('subscription');
    return sub;
  }

  async function lotLeft(transferId: string | null): Promise<number> {
    if (!transferId) return 0;
    const lot = await ledger.findLotByTransfer(transferId);
    return lot ? lot.remaining : 0;
  }

/** The user's subscription as /account shows it; undefined when they never subscribed. */
async function summary(userId: string): Promise<SubscriptionSummary | undefined> {
    const subscription = await store.currentSubscription(db, userId);
    if (!subscription) return undefined;
    const period = (await store.listPeriods(db, subscription.id))[0] ?? null;
    const plan = (await store.findPlan(db, period?.planId ?? subscription.planId))!;
    const billed = (await store.findPlan(db, subscription.planId))!;
    const prorations = period ? await store.prorationsIn(db, subscription.id, period.periodStart, period.periodEnd) : [];
    const granted = period ? period.grantedMillicredits + prorations.reduce((s, i) => s + (i.prorationMillicredits ?? 0), 0) : 0;
    let left = 0;
    if (period) {
      left += await lotLeft(period.grantTransferId);
      for (const i of prorations) left += await lotLeft(i.prorationTransferId);
    }
    return {
      subscription,
      plan,
      nextPlan: billed.id !== plan.id ? billed : null,
      period,
      creditsGrantedThisPeriod: granted,
      periodCreditsLeft: left,
      periodCreditsExpireAt: period?.periodEnd ?? null,
      rolloverCredits: period?.rolloverMillicredits ?? 0,
      rolloverCreditsLeft: await lotLeft(period?.rolloverTransferId ?? null),
      rolloverExpiresAt: period?.rolloverExpiresAt ?? null,
    };
  }

  return {
    webhookHandlers,
    creditDueMonths,

    /** Active plans, in display order. */
    listPlans: () => store.listPlans(db),

    /**
     * Starts a subscription: a Checkout Session in `mode: subscription` for the plan's recurring
     * price. 400 for an unknown plan; 409 `already_subscribed` (with `changePlanUrl`) when the user
     * has a live subscription.
     */
    async createCheckout(user: { id: string; email: string; name: string }, planId: string): Promise<{ sessionId: string; checkoutUrl: string }> {
      const plan = await livePlan(planId);
      const existing = await store.currentSubscription(db, user.id);
      if (existing && store.LIVE_STATUSES.includes(existing.status)) {
        throw new ConflictError('You already have a subscription; change its plan instead.', 'already_subscribed', { changePlanUrl: `${config.appUrl}/account#subscription` });
      }
      const [customer, price] = await Promise.all([customers.customerFor(user), priceFor(plan)]);
      const session = await stripe.checkout.sessions.create({
        mode: 'subscription',
        customer,
        client_reference_id: user.id,
        line_items: [{ price, quantity: 1 }],
        success_url: `${config.appUrl}/subscriptions/success?session_id={CHECKOUT_SESSION_ID}`,
        cancel_url: `${config.appUrl}/pricing`,
        metadata: { userId: user.id, planId: plan.id },
      });
      if (!session.url) throw new AppError(502, 'stripe_error', 'Bad gateway', 'Stripe returned a session without a URL.');
      return { sessionId: session.id, checkoutUrl: session.url };
    },

    /**
     * The success page's side: reads the session back and credits the first period if paid. 404
     * unless it is the user's. `duplicate`: the user already had a live subscription (two
     * checkouts paid at once), so this one was cancelled at Stripe and credits nothing.
     */
    async confirmCheckout(sessionId: string, userId: string): Promise<{ paid: boolean; duplicate: boolean }> {
      const session = await stripe.checkout.sessions.retrieve(sessionId).catch((err: unknown) => {
        if ((err as { statusCode?: number }).statusCode === 404) throw new NotFoundError('checkout session');
        throw err;
      });
      if (session.client_reference_id !== userId || session.mode !== 'subscription') throw new NotFoundError('checkout session');
      const subId = idOf(session.subscription);
      const outcome = subId ? await syncFromStripe(subId, idOf(session.invoice)) : null;
      if (subId && outcome === DUPLICATE) await cancelDuplicate(subId);
      return { paid: session.payment_status === 'paid', duplicate: outcome === DUPLICATE };
    },

    /** The user's subscription as /account shows it; undefined when they never subscribed. */
    summary,

    /** The subscription's invoices, newest first. */
    listInvoices: (subscriptionId: string) => store.listInvoices(db, subscriptionId),

    /** Cancels at period end (true) or undoes that (false). 404 without a live subscription; 409 once ended. */
    async setCancelAtPeriodEnd(userId: string, cancel: boolean): Promise<void> {
      const sub = await liveSubscription(userId);
      await stripe.subscriptions.update(sub.stripeSubscriptionId, { cancel_at_period_end: cancel });
      await syncFromStripe(sub.stripeSubscriptionId, null);
    },

    /**
     * Changes plan: a plan with more credits (same interval) at once, prorated and charged now (its
     * prorated credits arrive when the invoice is paid); one with fewer from the next renewal.
     * 400 unknown plan or other interval; 409 same plan; 404 without a live subscription.
     */
    async changePlan(userId: string, planId: string): Promise<'upgraded' | 'downgrade_scheduled'> {
      const sub = await liveSubscription(userId);
      const next = await livePlan(planId);
      const current = (await summary(userId))!;
      if (next.id === sub.planId) throw new ConflictError(`You are already on ${next.name}.`, 'same_plan');
      if (next.interval !== current.plan.interval || next.currency !== current.plan.currency) {
        throw new ValidationError([{ field: 'body.planId', message: `must be billed every ${current.plan.interval} in ${current.plan.currency.toUpperCase()}, like the current plan` }]);
      }
      const upgrade = next.creditsMillicredits > current.plan.creditsMillicredits;
      const s = await stripe.subscriptions.retrieve(sub.stripeSubscriptionId);
      await stripe.subscriptions.update(sub.stripeSubscriptionId, {
        items: [{ id: s.items.data[0]!.id, price: await priceFor(next) }],
        proration_behavior: upgrade ? 'always_invoice' : 'none',
      });
      await syncFromStripe(sub.stripeSubscriptionId, null);
      return upgrade ? 'upgraded' : 'downgrade_scheduled';
    },

    /** A Stripe customer portal session for the user (plan change, cancel, card, invoices). 404 before any subscription. */
    async portalUrl(user: { id: string; email: string; name: string }): Promise<string> {
      const sub = await store.currentSubscription(db, user.id);
      if (!sub) throw new NotFoundError('subscription');
      const session = await stripe.billingPortal.sessions.create({ customer: sub.stripeCustomerId, return_url: `${config.appUrl}/account` });
      return session.url;
    },

    /**
     * An admin grants the current period's credits by hand (e.g. after an outage), once per
     * (user, period): a second call, or a period already credited from its invoice, changes
     * nothing. Returns whether credits came now. 404 without a live subscription.
     */
    async grantCurrentPeriod(userId: string, admin: string, reason: string): Promise<{ granted: boolean; periodStart: Date; periodEnd: Date }> {
      const sub = await liveSubscription(userId);
      const plan = (await store.findPlan(db, sub.planId))!;
      const w = plan.interval === 'month' ? { start: sub.currentPeriodStart, end: sub.currentPeriodEnd } : monthOf(sub.currentPeriodStart, sub.currentPeriodEnd, await stripeNow(sub));
      const granted = await inTransaction(db, async (trx) => {
        const locked = (await store.findSubscriptionByStripeId(trx, sub.stripeSubscriptionId))!;
        return creditPeriod(trx, locked, plan, w.start, w.end, 'admin', { grantedBy: admin, reason });
      });
      return { granted, periodStart: w.start, periodEnd: w.end };
    },

    /** Re-reads a subscription from Stripe and credits what is paid (tests, support). */
    sync: (stripeSubscriptionId: string) => syncFromStripe(stripeSubscriptionId, null),
  };
}

export type Subscriptions = ReturnType<typeof createSubscriptions>;
