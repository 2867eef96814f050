import type Stripe from 'stripe';
import type { Config } from '../config.ts';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { AppError, ConflictError, NotFoundError, ValidationError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Logger } from '../logger.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { formatMoney } from '@tally/money';
import { numericIdCursor, paginate, type Page } from '../pagination.ts';
import * as store from './payments-store.ts';
import type { StripeCustomers } from './stripe-customers.ts';
import type { CreditPackage, Payment, PaymentStatus } from './payments-store.ts';

/** Called inside the payment's transaction: receipts and refund notices (src/notifications/payment-notices.ts). */
export interface PaymentEvents {
  /** The payment was fulfilled now, for the first time. */
  paid(trx: Trx, payment: Payment): Promise<void>;
  /** The cumulative refund went from `beforeCents` to `afterCents`; `clawedBack` millicredits were taken back. */
  refunded(trx: Trx, payment: Payment, beforeCents: number, afterCents: number, clawedBack: number): Promise<void>;
}

export interface PaymentsDeps {
  db: Db;
  events?: PaymentEvents;
  ledger: Ledger;
  stripe: Stripe;
  config: Pick<Config, 'appUrl' | 'packBonusExpiryDays'>;
  logger: Logger;
  /** Users' Stripe customers (shared with subscriptions). */
  customers: StripeCustomers;
}

/** The fields of a `charge.refunded` event's charge that a refund needs. */
export interface RefundedCharge {
  id: string;
  payment_intent: string | { id: string } | null;
  amount_refunded: number;
  refunds?: { data: Array<{ id: string; amount: number; status?: string | null; reason?: string | null; metadata?: Record<string, string> | null }> } | null;
}

/** What fulfillment reads of a Checkout Session (from Stripe's API, or a webhook event). */
export type SessionFacts = Pick<Stripe.Checkout.Session, 'id' | 'payment_status' | 'amount_total' | 'currency' | 'payment_intent'>;

/** A refund's payment (and session, when it is not fulfilled yet); empty when not Tally's. */
export interface RefundTarget {
  payment?: Payment;
  session?: Stripe.Checkout.Session;
}

export interface CheckoutResult {
  payment: Payment;
  sessionId: string;
  checkoutUrl: string;
}

/** `floor(amount × part / whole)` on integers, exact for any sizes (BigInt), for refund shares. */
function share(amount: number, part: number, whole: number): number {
  return Number((BigInt(amount) * BigInt(part)) / BigInt(whole));
}

const idOf = (v: string | { id: string } | null | undefined): string | null => (v == null ? null : typeof v === 'string' ? v : v.id);

/**
 * Buying credit packs through Stripe Checkout and keeping the ledger in step with Stripe:
 * checkout sessions, fulfillment (from the webhook and from the success page, exactly once),
 * expiries, and refunds clawed back from the purchase's lots.
 */
export function createPayments(deps: PaymentsDeps) {
  const { db, ledger, stripe, config, logger } = deps;

  const customerFor = (user: { id: string; email: string; name: string }) => deps.customers.customerFor(user);

  /**
   * Grants a paid payment's credits: one `purchase` lot (never expires) and, if the pack has a
   * bonus, one `bonus` lot (expiring after PACK_BONUS_EXPIRY_DAYS, if set). The transfer ids are
   * derived from the payment id, so however many times and from wherever this runs, the credits
   * arrive once (primary key on transfers, and the payment row is locked).
   */
  async function fulfill(trx: Trx, payment: Payment, paymentIntentId: string | null): Promise<boolean> {
    const already = payment.status !== 'pending' && payment.status !== 'expired';
    if (!already) await store.markPaid(trx, payment.id, paymentIntentId);
    const reference = { type: 'payment', id: payment.id };
    const purchase = await ledger.grant(
      {
        transferId: `purchase:${payment.id}`,
        userId: payment.teamId ?? payment.userId,
        millicredits: payment.creditsMillicredits,
        kind: 'purchase',
        actor: 'stripe',
        reason: `Bought the ${payment.packageId} pack`,
        reference,
      },
      trx,
    );
    if (payment.bonusMillicredits > 0) {
      const days = config.packBonusExpiryDays;
      const paidAt = payment.paidAt ?? new Date();
      await ledger.grant(
        {
          transferId: `purchase_bonus:${payment.id}`,
          userId: payment.teamId ?? payment.userId,
          millicredits: payment.bonusMillicredits,
          kind: 'bonus',
          actor: 'stripe',
          reason: `Bonus of the ${payment.packageId} pack`,
          reference,
          expiresAt: days > 0 ? new Date(paidAt.getTime() + days * 86_400_000) : null,
        },
        trx,
      );
    }
    if (!purchase.replayed) await deps.events?.paid(trx, { ...payment, paymentIntentId: payment.paymentIntentId ?? paymentIntentId, paidAt: payment.paidAt ?? new Date() });
    return !purchase.replayed;
  }

  /**
   * Fulfills the payment of a Checkout Session if Stripe says it is paid. Checks the amount and
   * currency Stripe charged against what the pack cost. Returns the payment and whether credits were
   * granted now (false: already fulfilled, or not paid).
   */
  async function fulfillSession(session: SessionFacts, trx?: Trx): Promise<{ payment: Payment | undefined; granted: boolean; outcome: string }> {
    return inTransaction(trx ?? db, async (t) => {
      const payment = await store.findPaymentBy(t, { checkout_session_id: session.id }, true);
      if (!payment) return { payment, granted: false, outcome: 'unknown_session' };
      if (session.payment_status !== 'paid') return { payment, granted: false, outcome: `not_paid:${session.payment_status}` };
      if (session.amount_total !== payment.amountCents || session.currency !== payment.currency) {
        logger.error({ paymentId: payment.id, sessionId: session.id, amount: session.amount_total, currency: session.currency }, 'paid amount differs from the pack price; not granting');
        throw new ConflictError('The amount paid does not match the price of the pack.', 'amount_mismatch');
      }
      const granted = await fulfill(t, payment, idOf(session.payment_intent));
      return { payment: await store.findPayment(t, payment.id), granted, outcome: granted ? 'fulfilled' : 'already_fulfilled' };
    });
  }

  /** Claws back the refunded share of a payment's lots; `refundedCents` is Stripe's cumulative total. */
  async function applyRefundTotal(trx: Trx, payment: Payment, refundedCents: number): Promise<string> {
    if (refundedCents <= payment.refundedCents) return 'refund_already_applied';
    if (refundedCents > payment.amountCents) throw new ConflictError('Refunded more than was paid.', 'refund_exceeds_payment');
    if (payment.status === 'pending' || payment.status === 'expired') {
      throw new ConflictError('Refund for a payment not yet fulfilled; retry later.', 'refund_before_fulfillment');
    }
    const reference = { type: 'payment', id: payment.id };
    const parts: Array<{ transferId: string; lotOf: string; millicredits: number }> = [
      { transferId: `purchase:${payment.id}`, lotOf: 'purchase', millicredits: payment.creditsMillicredits },
      { transferId: `purchase_bonus:${payment.id}`, lotOf: 'bonus', millicredits: payment.bonusMillicredits },
    ];
    let clawedBack = 0;
    for (const part of parts) {
      if (part.millicredits === 0) continue;
      const delta = share(part.millicredits, refundedCents, payment.amountCents) - share(part.millicredits, payment.refundedCents, payment.amountCents);
      if (delta <= 0) continue;
      clawedBack += delta;
      const lot = await ledger.findLotByTransfer(part.transferId, trx);
      if (!lot) throw new Error(`lot of ${part.transferId} is missing`);
      await ledger.clawback(
        {
          transferId: `refund:${payment.id}:${part.lotOf}:${refundedCents}`,
          lotId: lot.id,
          millicredits: delta,
          actor: 'stripe',
          reason: `Refund of ${formatMoney(refundedCents - payment.refundedCents, payment.currency)}`,
          reference,
        },
        trx,
      );
    }
    const status: PaymentStatus = refundedCents === payment.amountCents ? 'refunded' : 'partially_refunded';
    await store.setRefunded(trx, payment.id, refundedCents, status);
    await deps.events?.refunded(trx, payment, payment.refundedCents, refundedCents, clawedBack);
    return 'refund_clawed_back';
  }

  /**
   * What a refund of `charge` applies to, looked up before the event's transaction (it may ask
   * Stripe): the payment, and its Checkout Session when the payment is not fulfilled yet. An
   * unknown or missing payment intent gives `{}`.
   */
  async function refundTarget(charge: RefundedCharge): Promise<RefundTarget> {
    const piId = idOf(charge.payment_intent);
    if (!piId) return {};
    let payment = await store.findPaymentBy(db, { payment_intent_id: piId });
    if (!payment) {
      let pi: Stripe.PaymentIntent | undefined;
      try {
        pi = await stripe.paymentIntents.retrieve(piId);
      } catch (err) {
        // Not ours (another integration on the same account, or a deleted test object): retrying cannot help.
        if ((err as { code?: string }).code === 'resource_missing') return {};
        throw err; // transient: Stripe will retry the delivery
      }
      payment = pi.metadata?.paymentId ? await store.findPayment(db, pi.metadata.paymentId) : undefined;
    }
    if (payment && (payment.status === 'pending' || payment.status === 'expired') && payment.checkoutSessionId) {
      return { payment, session: await stripe.checkout.sessions.retrieve(payment.checkoutSessionId) };
    }
    return { payment };
  }

  /** The operations the Stripe webhook (stripe-webhook.ts) runs, each in the event's transaction. */
  const webhookOperations = {
    /**
     * Fulfills a payment charged off-session (no Checkout Session: auto-recharge) when Stripe says
     * its PaymentIntent succeeded and the amount and currency are the pack's. The same `fulfill`
     * as a checkout, so credits arrive once as a purchase lot. Returns the payment, or undefined
     * when the intent is not such a payment.
     */
    async fulfillPaymentIntent(
      pi: { id: string; status?: string; amount?: number; currency?: string; metadata?: Record<string, string> | null },
      trx: Trx,
    ): Promise<{ payment: Payment; granted: boolean } | undefined> {
      const paymentId = pi.metadata?.paymentId;
      if (!paymentId) return undefined;
      const payment = await store.findPayment(trx, paymentId, true);
      if (!payment || payment.checkoutSessionId) return undefined;
      if (pi.status !== 'succeeded') return { payment, granted: false };
      if (pi.amount !== payment.amountCents || pi.currency !== payment.currency) {
        logger.error({ paymentId, paymentIntentId: pi.id }, 'off-session amount differs from the pack price; not granting');
        throw new ConflictError('The amount paid does not match the price of the pack.', 'amount_mismatch');
      }
      return { payment, granted: await fulfill(trx, payment, pi.id) };
    },

    fulfillSession: async (session: SessionFacts, trx: Trx) => (await fulfillSession(session, trx)).outcome,

    async expireSession(sessionId: string, trx: Trx): Promise<string> {
      const payment = await store.findPaymentBy(trx, { checkout_session_id: sessionId }, true);
      if (!payment) return 'unknown_session';
      await store.markExpired(trx, payment.id);
      return payment.status === 'pending' ? 'expired' : `ignored:${payment.status}`;
    },

    async recordPaymentIntent(pi: { id: string; metadata?: Record<string, string> | null }, trx: Trx): Promise<string> {
      const paymentId = pi.metadata?.paymentId;
      if (!paymentId) return 'ignored:no_payment';
      const payment = await store.findPayment(trx, paymentId, true);
      if (!payment) return 'ignored:unknown_payment';
      // Fulfillment waits for checkout.session.completed (or the success page); just remember the intent.
      if (!payment.paymentIntentId) await store.setPaymentIntent(trx, payment.id, pi.id);
      return 'recorded';
    },

    refundTarget,

    /** Claws back a refunded charge's share; `target` from {@link refundTarget}. */
    async applyChargeRefund(charge: RefundedCharge, target: RefundTarget & { payment: Payment }, trx: Trx): Promise<string> {
      let payment = (await store.findPayment(trx, target.payment.id, true))!;
      if ((payment.status === 'pending' || payment.status === 'expired') && target.session) {
        // The refund overtook the completion event: fulfill first, then claw back.
        await fulfillSession(target.session, trx);
        payment = (await store.findPayment(trx, payment.id, true))!;
      }
      for (const r of charge.refunds?.data ?? []) {
        await store.upsertRefund(trx, { id: r.id, paymentId: payment.id, amountCents: r.amount, status: r.status ?? 'succeeded', reason: r.reason ?? null, requestedBy: r.metadata?.requestedBy ?? null });
      }
      return applyRefundTotal(trx, payment, charge.amount_refunded);
    },

    recordProblem: (q: Db | Trx, problem: Omit<store.WebhookProblem, 'id' | 'receivedAt'>) => store.insertWebhookProblem(q, problem),
  };

  return {
    /** Active credit packs, cheapest first. */
    listPackages(): Promise<CreditPackage[]> {
      return store.listPackages(db);
    },

    /** The user's Stripe customer id, created once (Stripe idempotency key per user). */
    ensureCustomer: customerFor,

    /**
     * Starts buying a pack: a pending `payments` row and a Stripe Checkout Session (mode payment,
     * price from the server-side pack only, `client_reference_id` = user, metadata with payment and
     * pack ids). With an `idempotencyKey`, a retried request returns the same payment and session.
     * Throws {@link ValidationError} (400) for an unknown pack. With `teamId` (the caller checked
     * the buyer may buy for it), the credits go to the team's pool.
     */
    async createCheckout(
      user: { id: string; email: string; name: string },
      packageId: string,
      idempotencyKey?: string,
      teamId?: string,
    ): Promise<CheckoutResult> {
      const pack = await store.findPackage(db, packageId);
      if (!pack) throw new ValidationError([{ field: 'body.packageId', message: `no credit pack "${packageId}"` }]);
      const { payment } = await store.insertPendingPayment(db, { userId: user.id, pack, idempotencyKey: idempotencyKey ?? null, teamId: teamId ?? null });
      if (payment.packageId !== pack.id || payment.teamId !== (teamId ?? null)) {
        throw new ConflictError('This Idempotency-Key was used for another pack.', 'idempotency_conflict');
      }
      if (payment.checkoutSessionId && payment.checkoutUrl) {
        return { payment, sessionId: payment.checkoutSessionId, checkoutUrl: payment.checkoutUrl };
      }
      const customer = await customerFor(user);
      const metadata = { paymentId: payment.id, packageId: pack.id, userId: user.id, ...(teamId ? { teamId } : {}) };
      const credits = millicreditsToCredits(pack.creditsMillicredits);
      const bonus = millicreditsToCredits(pack.bonusMillicredits);
      const session = await stripe.checkout.sessions.create(
        {
          mode: 'payment',
          customer,
          client_reference_id: user.id,
          line_items: [
            {
              quantity: 1,
              price_data: {
                currency: pack.currency,
                unit_amount: pack.amountCents,
                product_data: {
                  name: `${pack.name} — ${credits} credits`,
                  description: bonus > 0 ? `${credits} credits + ${bonus} bonus credits for Tally` : `${credits} credits for Tally`,
                },
              },
            },
          ],
          success_url: `${config.appUrl}/checkout/success?session_id={CHECKOUT_SESSION_ID}`,
          cancel_url: `${config.appUrl}/checkout/cancel?payment_id=${payment.id}`,
          metadata,
          payment_intent_data: { metadata },
        },
        { idempotencyKey: `tally-checkout-${payment.id}` },
      );
      if (!session.url) throw new AppError(502, 'stripe_error', 'Bad gateway', 'Stripe returned a session without a URL.');
      await store.setCheckoutSession(db, payment.id, session.id, session.url);
      return { payment: { ...payment, checkoutSessionId: session.id, checkoutUrl: session.url }, sessionId: session.id, checkoutUrl: session.url };
    },

    /**
     * The success page's side of fulfillment (Stripe advises fulfilling from both the webhook and the
     * landing page): retrieves the session from Stripe and fulfills it if paid. 404 unless the
     * session belongs to `userId`.
     */
    async confirmCheckout(sessionId: string, userId: string): Promise<{ payment: Payment; granted: boolean; paid: boolean }> {
      const mine = await store.findPaymentBy(db, { checkout_session_id: sessionId });
      if (!mine || mine.userId !== userId) throw new NotFoundError('checkout session');
      const session = await stripe.checkout.sessions.retrieve(sessionId);
      const { payment, granted } = await fulfillSession(session);
      return { payment: payment ?? mine, granted, paid: session.payment_status === 'paid' };
    },

    /** What the Stripe webhook runs (see stripe-webhook.ts); not for routes. */
    webhook: webhookOperations,

    /** Signed webhook deliveries that could not be used as they were, newest first (admins). */
    listWebhookProblems(page: { limit?: number; cursor?: string | null } = {}): Promise<Page<store.WebhookProblem>> {
      return paginate({ limit: page.limit, max: 100, default: 20, cursor: page.cursor, codec: numericIdCursor }, (n, beforeId) =>
        store.listWebhookProblems(db, n, beforeId),
      );
    },

    /** The user's payments, newest first (keyset pagination on created_at, id). */
    listPayments(userId: string, limit: number, before?: { createdAt: Date; id: string }): Promise<Payment[]> {
      return store.listUserPayments(db, userId, limit, before);
    },

    /** One payment with its refunds; 404 ({@link NotFoundError}) unless it belongs to `userId` (or `userId` is null: admin). */
    async getPayment(paymentId: string, userId: string | null) {
      const payment = await store.findPayment(db, paymentId);
      if (!payment || (userId !== null && payment.userId !== userId)) throw new NotFoundError('payment');
      return { payment, refunds: await store.listRefunds(db, payment.id) };
    },

    /**
     * The buyer came back through the checkout's cancel URL: an abandoned checkout. Expires its
     * open Checkout Session at Stripe (`POST /v1/checkout/sessions/:id/expire`), so it cannot be
     * paid later, and marks the payment `expired` at once (Stripe's `checkout.session.expired`
     * then finds it so). Returns the payment as it is now; nothing happens unless it is the
     * user's and still pending. A session Stripe will not expire (just completed) is left alone.
     */
    async abandonCheckout(paymentId: string, userId: string): Promise<Payment | undefined> {
      const payment = await store.findPayment(db, paymentId);
      if (!payment || payment.userId !== userId) return undefined;
      if (payment.status !== 'pending' || !payment.checkoutSessionId) return payment;
      try {
        const session = await stripe.checkout.sessions.expire(payment.checkoutSessionId);
        if (session.status !== 'expired') return payment;
      } catch (err) {
        logger.info({ err, paymentId }, 'checkout session not expired on cancel');
        return (await store.findPayment(db, paymentId)) ?? payment;
      }
      await inTransaction(db, (trx) => store.markExpired(trx, payment.id));
      return (await store.findPayment(db, paymentId)) ?? payment;
    },

    /**
     * Refunds a payment through Stripe (`amountCents` default: all that is left). The ledger side
     * happens when Stripe's `charge.refunded` webhook arrives. 409 when the payment isn't paid or
     * the amount exceeds what is left; 404 for an unknown payment.
     */
    async refund(paymentId: string, amountCents: number | undefined, requestedBy: string, idempotencyKey?: string) {
      const payment = await store.findPayment(db, paymentId);
      if (!payment) throw new NotFoundError('payment');
      if (!payment.paymentIntentId || (payment.status !== 'paid' && payment.status !== 'partially_refunded')) {
        throw new ConflictError(`A ${payment.status} payment cannot be refunded.`, 'not_refundable');
      }
      const left = payment.amountCents - payment.refundedCents;
      const amount = amountCents ?? left;
      if (amount < 1 || amount > left) {
        throw new ValidationError([{ field: 'body.amountCents', message: `must be between 1 and ${left} (what is left to refund)` }]);
      }
      const refund = await stripe.refunds.create(
        { payment_intent: payment.paymentIntentId, amount, reason: 'requested_by_customer', metadata: { paymentId, requestedBy } },
        idempotencyKey ? { idempotencyKey: `tally-refund-${paymentId}-${idempotencyKey}` } : undefined,
      );
      await store.upsertRefund(db, { id: refund.id, paymentId, amountCents: refund.amount, status: refund.status ?? 'pending', reason: refund.reason ?? null, requestedBy });
      return refund;
    },
  };
}

export type Payments = ReturnType<typeof createPayments>;
