import { viewHelpers } from '../credits/view-helpers.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { formatMoney } from '@tally/money';
import type { Plan, SubscriptionInvoice, SubscriptionSummary } from './subscriptions-service.ts';

/** `1,000` / `12.5`: credits for people. */
const formatCredits = (millicredits: number) => millicreditsToCredits(millicredits).toLocaleString('en-US', { maximumFractionDigits: 3 });

/** API and page shapes of subscriptions: credits as numbers (≤ 3 decimals), money in cents, ISO dates. */

export function planJson(p: Plan) {
  return {
    id: p.id,
    name: p.name,
    credits: millicreditsToCredits(p.creditsMillicredits),
    interval: p.interval,
    amountCents: p.amountCents,
    currency: p.currency,
    rolloverCapCredits: millicreditsToCredits(p.rolloverCapMillicredits),
    rolloverPeriods: p.rolloverPeriods,
  };
}

export function subscriptionJson(s: SubscriptionSummary) {
  return {
    status: s.subscription.status,
    plan: planJson(s.plan),
    nextPlan: s.nextPlan ? planJson(s.nextPlan) : null,
    periodStart: s.subscription.currentPeriodStart.toISOString(),
    periodEnd: s.subscription.currentPeriodEnd.toISOString(),
    cancelAtPeriodEnd: s.subscription.cancelAtPeriodEnd,
    canceledAt: s.subscription.canceledAt?.toISOString() ?? null,
    endedAt: s.subscription.endedAt?.toISOString() ?? null,
    creditsGrantedThisPeriod: millicreditsToCredits(s.creditsGrantedThisPeriod),
    creditsPeriodStart: s.period?.periodStart.toISOString() ?? null,
    creditsPeriodEnd: s.period?.periodEnd.toISOString() ?? null,
    periodCreditsLeft: millicreditsToCredits(s.periodCreditsLeft),
    rolloverCredits: millicreditsToCredits(s.rolloverCredits),
    rolloverCreditsLeft: millicreditsToCredits(s.rolloverCreditsLeft),
    rolloverExpiresAt: s.rolloverExpiresAt?.toISOString() ?? null,
  };
}

export function invoiceJson(i: SubscriptionInvoice) {
  return {
    number: i.number,
    status: i.status,
    billingReason: i.billingReason,
    amountDueCents: i.amountDue,
    amountPaidCents: i.amountPaid,
    currency: i.currency,
    periodStart: i.periodStart.toISOString(),
    periodEnd: i.periodEnd.toISOString(),
    attemptCount: i.attemptCount,
    nextPaymentAttempt: i.nextPaymentAttempt?.toISOString() ?? null,
    created: i.created.toISOString(),
    paidAt: i.paidAt?.toISOString() ?? null,
    proratedCredits: i.prorationMillicredits === null ? null : millicreditsToCredits(i.prorationMillicredits),
  };
}

const STATUS_WORDS: Record<string, string> = {
  active: 'Active',
  trialing: 'Trial',
  past_due: 'Payment failed',
  canceled: 'Ended',
  incomplete: 'Awaiting payment',
  unpaid: 'Unpaid',
  paused: 'Paused',
};
const REASON_WORDS: Record<string, string> = {
  subscription_create: 'First payment',
  subscription_cycle: 'Renewal',
  subscription_update: 'Plan change',
};

/** What people read on /pricing: price per period, credits, rollover in words. */
export function planView(p: Plan) {
  const per = p.interval === 'year' ? 'year' : 'month';
  return {
    id: p.id,
    name: p.name,
    price: `${formatMoney(p.amountCents, p.currency)} / ${per}`,
    credits: formatCredits(p.creditsMillicredits),
    rollover: p.rolloverCapMillicredits > 0 ? `Unused credits roll over, up to ${formatCredits(p.rolloverCapMillicredits)}, for ${p.rolloverPeriods === 1 ? 'one more month' : `${p.rolloverPeriods} more months`}.` : 'Unused credits expire at the end of each month.',
    yearly: p.interval === 'year',
  };
}

/** The /account and admin sections: words and formatted values only (no internal ids). */
export function subscriptionView(s: SubscriptionSummary, invoices: SubscriptionInvoice[] = []) {
  const sub = s.subscription;
  const live = !['canceled', 'incomplete_expired'].includes(sub.status);
  return {
    live,
    pastDue: sub.status === 'past_due',
    status: STATUS_WORDS[sub.status] ?? sub.status,
    planName: s.plan.name,
    nextPlanName: s.nextPlan?.name ?? null,
    price: `${formatMoney(s.plan.amountCents, s.plan.currency)} / ${s.plan.interval}`,
    cancelAtPeriodEnd: sub.cancelAtPeriodEnd,
    periodEnd: viewHelpers.date(sub.currentPeriodEnd),
    endedAt: viewHelpers.date(sub.endedAt),
    periodCredits: formatCredits(s.creditsGrantedThisPeriod),
    periodCreditsLeft: formatCredits(s.periodCreditsLeft),
    periodCreditsExpire: viewHelpers.date(s.periodCreditsExpireAt),
    rolloverCredits: s.rolloverCredits > 0 ? formatCredits(s.rolloverCredits) : null,
    rolloverCreditsLeft: formatCredits(s.rolloverCreditsLeft),
    rolloverExpire: viewHelpers.date(s.rolloverExpiresAt),
    invoices: invoices.map((i) => ({
      number: i.number ?? '—',
      date: viewHelpers.date(i.created),
      reason: (i.billingReason && REASON_WORDS[i.billingReason]) ?? 'Invoice',
      amount: formatMoney(i.amountDue, i.currency),
      status: i.status === 'paid' ? 'Paid' : i.status === 'open' ? (i.attemptCount > 0 ? `Failed (${i.attemptCount} ${i.attemptCount === 1 ? 'attempt' : 'attempts'})` : 'Open') : i.status,
      proratedCredits: i.prorationMillicredits === null ? null : formatCredits(i.prorationMillicredits),
    })),
  };
}

export type SubscriptionView = ReturnType<typeof subscriptionView>;

/**
 * The subscription section of /account and of the admin's user page (views/subscriptions/
 * _account.ejs, _admin.ejs): null when the user never subscribed.
 */
export async function loadSubscriptionView(
  subscriptions: { summary(userId: string): Promise<SubscriptionSummary | undefined>; listInvoices(subscriptionId: string): Promise<SubscriptionInvoice[]> },
  userId: string,
): Promise<SubscriptionView | null> {
  const s = await subscriptions.summary(userId);
  return s ? subscriptionView(s, await subscriptions.listInvoices(s.subscription.id)) : null;
}
