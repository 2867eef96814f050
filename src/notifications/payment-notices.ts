import type Stripe from 'stripe';
import type { Trx } from '../db/database.ts';
import { formatCredits, millicreditsToCredits } from '../ledger/credits.ts';
import type { Logger } from '../logger.ts';
import { formatMoney } from '@tally/money';
import { findPackage, type Payment } from '../payments/payments-store.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import type { Notifier } from './notifier.ts';

/** What the payments service calls, inside its fulfillment and refund transactions. */
export interface PaymentHooks {
  /** A payment was fulfilled now (credits granted for the first time). */
  paid(trx: Trx, payment: Payment): Promise<void>;
  /** Stripe's cumulative refund total went from `before` to `after` cents and the credits were clawed back. */
  refunded(trx: Trx, payment: Payment, before: number, after: number, clawedBackMillicredits: number): Promise<void>;
}

const brandNames: Record<string, string> = { visa: 'Visa', mastercard: 'Mastercard', amex: 'American Express', discover: 'Discover', jcb: 'JCB', diners: 'Diners Club', unionpay: 'UnionPay' };

/**
 * Receipts and refund notices: the receipt email (pack, credits, amount, card brand and last 4,
 * link), the notification-centre entry and the `payment.succeeded` / `payment.refunded` webhook
 * events, written in the payment's own transaction. The card comes from Stripe (the charge's
 * `payment_method_details.card`); if Stripe cannot be asked, the receipt goes without it.
 */
export function createPaymentNotices(deps: { notifier: Notifier; stripe: Stripe; logger: Logger }): PaymentHooks {
  const { notifier, stripe, logger } = deps;
  const url = (path: string) => `${notifier.appUrl}${path}`;

  async function cardOf(paymentIntentId: string | null): Promise<{ brand: string; last4: string } | null> {
    if (!paymentIntentId) return null;
    try {
      const pi = await stripe.paymentIntents.retrieve(paymentIntentId, { expand: ['latest_charge'] });
      const charge = pi.latest_charge;
      const card = charge && typeof charge !== 'string' ? charge.payment_method_details?.card : undefined;
      return card ? { brand: card.brand ?? 'card', last4: card.last4 ?? '' } : null;
    } catch (err) {
      logger.warn({ err, paymentIntentId }, 'card details for the receipt unavailable');
      return null;
    }
  }

  return {
    async paid(trx, payment) {
      const pack = await findPackage(trx, payment.packageId);
      const packName = pack?.name ?? payment.packageId;
      const card = await cardOf(payment.paymentIntentId);
      const amount = formatMoney(payment.amountCents, payment.currency);
      const cardText = card ? `${brandNames[card.brand] ?? card.brand} ending in ${card.last4}` : null;
      const link = `/account/payments/${payment.id}`;
      await notifier.notify(trx, {
        userId: payment.userId,
        inbox: { type: 'payment.succeeded', title: 'Payment received', body: `${packName}: ${formatCredits(payment.creditsMillicredits + payment.bonusMillicredits)} credits for ${amount}.`, link },
        email: {
          type: 'receipt',
          dedupeKey: `receipt:${payment.id}`,
          data: (r) => ({
            name: r.name,
            packName,
            credits: formatCredits(payment.creditsMillicredits),
            bonusCredits: payment.bonusMillicredits > 0 ? formatCredits(payment.bonusMillicredits) : null,
            amount,
            card: cardText,
            paidAt: viewHelpers.dateTime(payment.paidAt ?? new Date()),
            receiptUrl: url(link),
          }),
        },
        webhook: {
          type: 'payment.succeeded',
          eventId: `payment.succeeded:${payment.id}`,
          data: {
            paymentId: payment.id,
            packageId: payment.packageId,
            credits: millicreditsToCredits(payment.creditsMillicredits),
            bonusCredits: millicreditsToCredits(payment.bonusMillicredits),
            amountCents: payment.amountCents,
            currency: payment.currency,
            card: card ? { brand: card.brand, last4: card.last4 } : null,
          },
        },
      });
    },

    async refunded(trx, payment, before, after, clawedBack) {
      const pack = await findPackage(trx, payment.packageId);
      const packName = pack?.name ?? payment.packageId;
      const amount = formatMoney(after - before, payment.currency);
      const link = `/account/payments/${payment.id}`;
      await notifier.notify(trx, {
        userId: payment.userId,
        inbox: { type: 'payment.refunded', title: 'Refund issued', body: `${amount} of your ${packName} purchase was refunded; ${formatCredits(clawedBack)} credits were taken back.`, link },
        email: {
          type: 'refund',
          dedupeKey: `refund:${payment.id}:${after}`,
          data: (r) => ({ name: r.name, packName, amount, total: formatMoney(after, payment.currency), credits: formatCredits(clawedBack), receiptUrl: url(link) }),
        },
        webhook: {
          type: 'payment.refunded',
          eventId: `payment.refunded:${payment.id}:${after}`,
          data: { paymentId: payment.id, refundedCents: after - before, totalRefundedCents: after, currency: payment.currency, creditsClawedBack: millicreditsToCredits(clawedBack), status: after === payment.amountCents ? 'refunded' : 'partially_refunded' },
        },
      });
    },
  };
}
