import { formatMoney } from '@tally/money';
import { viewHelpers } from '../credits/view-helpers.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { EmailOutbox } from '../notifications/email-outbox.ts';
import type { SubscriptionNotifier } from './subscriptions-service.ts';
import { userContact } from './subscriptions-store.ts';

const credits = (m: number) => millicreditsToCredits(m).toLocaleString('en-US', { maximumFractionDigits: 3 });

/**
 * The subscription emails through the notification outbox (issue 13), written in the crediting
 * transaction: a renewal receipt once per renewal, a payment-failed notice (with the fix-card link)
 * once per failed attempt (dedupe keys).
 */
export function createSubscriptionEmails(deps: { outbox: Pick<EmailOutbox, 'enqueue'>; appUrl: string }): SubscriptionNotifier {
  return {
    async renewalReceipt(trx, e) {
      const user = await userContact(trx, e.userId);
      if (!user) return;
      await deps.outbox.enqueue(trx, {
        type: 'subscription_renewal',
        to: user.email,
        userId: e.userId,
        dedupeKey: `subscription_renewal:${e.userId}:${e.periodEnd.toISOString()}`,
        data: {
          name: user.name,
          planName: e.planName,
          amount: formatMoney(e.amountCents, e.currency),
          credits: credits(e.millicredits),
          rolloverCredits: e.rolloverMillicredits > 0 ? credits(e.rolloverMillicredits) : null,
          periodEnd: viewHelpers.date(e.periodEnd),
          invoiceNumber: e.invoiceNumber ?? '—',
          accountUrl: `${deps.appUrl}/account#subscription`,
        },
      });
    },
    async paymentFailed(trx, e) {
      const user = await userContact(trx, e.userId);
      if (!user) return;
      await deps.outbox.enqueue(trx, {
        type: 'subscription_payment_failed',
        to: user.email,
        userId: e.userId,
        dedupeKey: `subscription_payment_failed:${e.invoiceId}:${e.attempt}`,
        data: {
          name: user.name,
          planName: e.planName,
          amount: formatMoney(e.amountCents, e.currency),
          nextAttempt: e.nextAttemptAt ? viewHelpers.date(e.nextAttemptAt) : null,
          fixCardUrl: e.fixCardUrl,
        },
      });
    },
  };
}
