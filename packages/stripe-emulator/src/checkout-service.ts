import { inTransaction, type Db, type Trx } from './db.ts';
import { AUTOMATIC, type RecordEvent } from './stripe-emulator-events.ts';
import { newId, clientSecret } from './stripe-ids.ts';
import { chargeObject, checkoutUrl, paymentIntentObject, sessionObject, unix } from './stripe-emulator-objects.ts';
import type { StripeEmulatorService } from './stripe-emulator-service.ts';
import * as store from './stripe-emulator-store.ts';
import type { BillingService } from './billing-service.ts';
import type {
  CardDetails,
  DbLineItemRow,
  DbPaymentIntentRow,
  DbSessionRow,
} from './stripe-emulator-store.ts';
import { cardBehaviour, validateCardForm, type CardBehaviour, type CardForm, type FieldErrors } from './test-cards.ts';
import { findSetupIntent, insertPaymentMethod, paymentMethodObject, setupIntentObject, updateSetupIntent } from './setup-intents.ts';

/**
 * What happens when someone pays on the hosted checkout page: the payment intent (created at the
 * first attempt, as Checkout does since API version 2022-08-01), its charges, 3-D Secure, and the
 * events Stripe sends for each outcome:
 * - success: `charge.succeeded`, `payment_intent.succeeded`, `checkout.session.completed`;
 * - decline: `charge.failed`, `payment_intent.payment_failed` (the session stays open);
 * - 3-D Secure card: `payment_intent.requires_action`, then success or
 *   `payment_intent.payment_failed` when authentication fails.
 * The first attempt also records `payment_intent.created`.
 */

type Q = Db | Trx;

export interface CheckoutView {
  session: DbSessionRow;
  lineItems: DbLineItemRow[];
  paymentIntent: DbPaymentIntentRow | undefined;
  /** The email the session already knows (customer_email or the customer's), if any. */
  knownEmail: string | null;
}

export type PayOutcome =
  | { kind: 'not_found' }
  | { kind: 'closed' }
  | { kind: 'invalid'; errors: FieldErrors }
  | { kind: 'declined'; message: string }
  | { kind: 'requires_action' }
  | { kind: 'succeeded'; redirectTo: string | null };

export type AuthenticateOutcome = PayOutcome | { kind: 'nothing_to_authenticate' };

interface PaidWith {
  paymentMethodId: string;
  card: CardDetails;
  billingName: string;
  email: string | null;
  /** The test card number: the saved PaymentMethod behaves like it off-session. */
  number?: string;
}

const AUTH_FAILED_MESSAGE = 'We are unable to authenticate your payment method. Please choose a different payment method and try again.';

/** Fills Stripe's `{CHECKOUT_SESSION_ID}` template in a success URL (https://docs.stripe.com/payments/checkout/custom-success-page). */
export function successRedirect(successUrl: string | null, sessionId: string): string | null {
  return successUrl ? successUrl.split('{CHECKOUT_SESSION_ID}').join(sessionId) : null;
}

/** Creates the checkout-page service: {@link CheckoutView} loading, `pay` and `authenticate`. */
export function createCheckoutService(deps: {
  db: Db;
  publicUrl: string;
  clock: () => Date;
  recordEvent: RecordEvent;
  service: StripeEmulatorService;
  billing: BillingService;
}) {
  const { db, publicUrl, clock, recordEvent, service, billing } = deps;

  async function knownEmailFor(q: Q, session: DbSessionRow): Promise<string | null> {
    if (session.customer_email) return session.customer_email;
    if (session.customer_id) return (await store.findCustomer(q, session.customer_id))?.email ?? null;
    return null;
  }

  /** Everything the page shows for a session; undefined when there is no such session. */
  async function loadCheckout(sessionId: string): Promise<CheckoutView | undefined> {
    await service.sweepExpiredSessions();
    const session = await store.findSession(db, sessionId);
    if (!session) return undefined;
    const [lineItems, paymentIntent, knownEmail] = await Promise.all([
      store.allLineItems(db, session.id),
      session.payment_intent_id ? store.findPaymentIntent(db, session.payment_intent_id) : Promise.resolve(undefined),
      knownEmailFor(db, session),
    ]);
    return { session, lineItems, paymentIntent, knownEmail };
  }

  function paymentMethodJson(paid: PaidWith): Record<string, unknown> {
    return {
      id: paid.paymentMethodId,
      object: 'payment_method',
      billing_details: { address: null, email: paid.email, name: paid.billingName, phone: null, tax_id: null },
      // Stripe's shape: payment_method.card.fingerprint is the same for every use of one card number.
      card: { brand: paid.card.brand, country: paid.card.country, exp_month: paid.card.exp_month, exp_year: paid.card.exp_year, fingerprint: paid.card.fingerprint, funding: paid.card.funding, last4: paid.card.last4 },
      created: unix(clock()),
      customer: null,
      livemode: false,
      metadata: {},
      type: 'card',
    };
  }

  /** Locks the open session; `closed`/`not_found` when it can no longer be paid. */
  async function lockOpenSession(trx: Trx, sessionId: string): Promise<DbSessionRow | 'closed' | 'not_found'> {
    const session = await store.findSession(trx, sessionId, { forUpdate: true });
    if (!session) return 'not_found';
    if (session.status === 'open' && session.expires_at.getTime() <= clock().getTime()) {
      await service.finishExpiry(trx, AUTOMATIC, session);
      return 'closed';
    }
    return session.status === 'open' ? session : 'closed';
  }

  async function ensurePaymentIntent(trx: Trx, session: DbSessionRow): Promise<DbPaymentIntentRow> {
    if (session.payment_intent_id) {
      const existing = await store.findPaymentIntent(trx, session.payment_intent_id, { forUpdate: true });
      if (existing) return existing;
    }
    const id = newId('paymentIntent');
    const pi = await store.insertPaymentIntent(trx, {
      id,
      created: clock(),
      amount: session.amount_total,
      currency: session.currency,
      status: 'requires_payment_method',
      client_secret: clientSecret(id),
      customer_id: session.customer_id,
      description: session.payment_intent_data.description,
      receipt_email: session.payment_intent_data.receipt_email,
      metadata: session.payment_intent_data.metadata,
      payment_method_id: null,
      latest_charge_id: null,
      amount_received: 0,
      last_payment_error: null,
      next_action: null,
      pending_card: null,
      canceled_at: null,
      cancellation_reason: null,
    });
    await store.updateSession(trx, session.id, { payment_intent_id: pi.id });
    await recordEvent(trx, AUTOMATIC, 'payment_intent.created', paymentIntentObject(pi));
    return pi;
  }

  /**
   * The card a payment used, as a PaymentMethod (so `payment_intent.payment_method` can be
   * retrieved): attached to the session's customer when the session asked for
   * `payment_intent_data.setup_future_usage` (`payment_method.attached`), unattached otherwise.
   */
  async function savePaymentMethod(trx: Trx, session: DbSessionRow, paid: PaidWith): Promise<void> {
    if (!paid.number) return;
    const attach = Boolean(session.payment_intent_data.setup_future_usage && session.customer_id);
    const row = await insertPaymentMethod(trx, {
      id: paid.paymentMethodId,
      created: clock(),
      customerId: attach ? session.customer_id : null,
      number: paid.number,
      card: paid.card,
      billingDetails: { email: paid.email, name: paid.billingName },
    });
    if (attach) await recordEvent(trx, AUTOMATIC, 'payment_method.attached', paymentMethodObject(row) as unknown as Record<string, unknown>);
  }

  async function succeed(trx: Trx, session: DbSessionRow, pi: DbPaymentIntentRow, paid: PaidWith): Promise<PayOutcome> {
    const now = clock();
    await savePaymentMethod(trx, session, paid);
    const charge = await store.insertCharge(trx, {
      id: newId('charge'),
      created: now,
      payment_intent_id: pi.id,
      amount: pi.amount,
      amount_refunded: 0,
      currency: pi.currency,
      status: 'succeeded',
      customer_id: pi.customer_id,
      description: pi.description,
      receipt_email: pi.receipt_email,
      metadata: pi.metadata,
      payment_method_id: paid.paymentMethodId,
      card: paid.card,
      billing_details: { email: paid.email, name: paid.billingName },
      failure_code: null,
      failure_message: null,
      outcome: {
        network_status: 'approved_by_network',
        reason: null,
        risk_level: 'normal',
        risk_score: 32,
        seller_message: 'Payment complete.',
        type: 'authorized',
      },
      balance_transaction_id: newId('balanceTransaction'),
    });
    await recordEvent(trx, AUTOMATIC, 'charge.succeeded', chargeObject(charge, publicUrl));
    const succeeded = await store.updatePaymentIntent(trx, pi.id, {
      status: 'succeeded',
      amount_received: pi.amount,
      latest_charge_id: charge.id,
      payment_method_id: paid.paymentMethodId,
      last_payment_error: null,
      next_action: null,
      pending_card: null,
    });
    await recordEvent(trx, AUTOMATIC, 'payment_intent.succeeded', paymentIntentObject(succeeded));
    const completed = await store.updateSession(trx, session.id, {
      status: 'complete',
      payment_status: 'paid',
      completed_at: now,
      customer_details: { email: paid.email, name: paid.billingName },
    });
    await recordEvent(trx, AUTOMATIC, 'checkout.session.completed', sessionObject(completed, publicUrl));
    return { kind: 'succeeded', redirectTo: successRedirect(completed.success_url, completed.id) };
  }

  async function decline(
    trx: Trx,
    pi: DbPaymentIntentRow,
    paid: PaidWith,
    behaviour: Extract<CardBehaviour, { kind: 'decline' }>,
  ): Promise<PayOutcome> {
    const charge = await store.insertCharge(trx, {
      id: newId('charge'),
      created: clock(),
      payment_intent_id: pi.id,
      amount: pi.amount,
      amount_refunded: 0,
      currency: pi.currency,
      status: 'failed',
      customer_id: pi.customer_id,
      description: pi.description,
      receipt_email: pi.receipt_email,
      metadata: pi.metadata,
      payment_method_id: paid.paymentMethodId,
      card: paid.card,
      billing_details: { email: paid.email, name: paid.billingName },
      failure_code: behaviour.code,
      failure_message: behaviour.message,
      outcome: {
        network_status: behaviour.code === 'processing_error' ? 'not_sent_to_network' : 'declined_by_network',
        reason: behaviour.declineCode ?? behaviour.code,
        risk_level: 'normal',
        risk_score: 32,
        seller_message: behaviour.sellerMessage,
        type: behaviour.code === 'processing_error' ? 'invalid' : 'issuer_declined',
      },
      balance_transaction_id: null,
    });
    await recordEvent(trx, AUTOMATIC, 'charge.failed', chargeObject(charge, publicUrl));
    const failed = await store.updatePaymentIntent(trx, pi.id, {
      status: 'requires_payment_method',
      latest_charge_id: charge.id,
      payment_method_id: null,
      next_action: null,
      pending_card: null,
      last_payment_error: {
        type: 'card_error',
        code: behaviour.code,
        ...(behaviour.declineCode ? { decline_code: behaviour.declineCode } : {}),
        message: behaviour.message,
        charge: charge.id,
        doc_url: `https://stripe.com/docs/error-codes/${behaviour.code.replace(/_/g, '-')}`,
        payment_method: paymentMethodJson(paid),
      },
    });
    await recordEvent(trx, AUTOMATIC, 'payment_intent.payment_failed', paymentIntentObject(failed));
    return { kind: 'declined', message: behaviour.message };
  }

  /**
   * A subscription-mode session: the card is saved on the customer and the subscription, its first
   * invoice and its payment are made by Billing; then `checkout.session.completed`.
   */
  async function startSubscription(trx: Trx, session: DbSessionRow, number: string, paid: PaidWith): Promise<PayOutcome> {
    const started = await billing.startFromCheckout(trx, session, { id: paid.paymentMethodId, details: paid.card, number });
    if (!started.ok) return { kind: 'declined', message: started.message };
    const completed = await store.updateSession(trx, session.id, {
      status: 'complete',
      payment_status: 'paid',
      completed_at: clock(),
      customer_id: started.customerId,
      subscription_id: started.subscriptionId,
      invoice_id: started.invoiceId,
      customer_details: { email: paid.email, name: paid.billingName },
    });
    await recordEvent(trx, AUTOMATIC, 'checkout.session.completed', sessionObject(completed, publicUrl));
    return { kind: 'succeeded', redirectTo: successRedirect(completed.success_url, completed.id) };
  }

  /**
   * A setup-mode session: the card becomes a PaymentMethod attached to the customer, the
   * session's SetupIntent succeeds with it (`payment_method.attached`, `setup_intent.succeeded`,
   * `checkout.session.completed`). A card declined outright (0002 and the other hard declines)
   * cannot be saved; 9995 (insufficient funds) and 3184 are saved, as at Stripe, and fail later
   * off-session.
   */
  async function completeSetup(trx: Trx, session: DbSessionRow, paid: PaidWith): Promise<PayOutcome> {
    const behaviour = cardBehaviour(paid.number!);
    if (behaviour.kind === 'decline' && behaviour.declineCode !== 'insufficient_funds') {
      return { kind: 'declined', message: behaviour.message };
    }
    const intent = await findSetupIntent(trx, session.setup_intent_id!);
    const method = await insertPaymentMethod(trx, {
      id: paid.paymentMethodId,
      created: clock(),
      customerId: session.customer_id,
      number: paid.number!,
      card: paid.card,
      billingDetails: { email: paid.email, name: paid.billingName },
    });
    await recordEvent(trx, AUTOMATIC, 'payment_method.attached', paymentMethodObject(method) as unknown as Record<string, unknown>);
    const succeeded = await updateSetupIntent(trx, intent.id, { status: 'succeeded', payment_method_id: method.id });
    await recordEvent(trx, AUTOMATIC, 'setup_intent.succeeded', setupIntentObject(succeeded) as unknown as Record<string, unknown>);
    const completed = await store.updateSession(trx, session.id, {
      status: 'complete',
      completed_at: clock(),
      customer_details: { email: paid.email, name: paid.billingName },
    });
    await recordEvent(trx, AUTOMATIC, 'checkout.session.completed', sessionObject(completed, publicUrl));
    return { kind: 'succeeded', redirectTo: successRedirect(completed.success_url, completed.id) };
  }

  /**
   * Pays `sessionId` with the card in `form` (test cards decide the outcome; see test-cards.ts).
   * Serialized per session by a row lock: a double submit pays once, the second sees `closed`.
   */
  async function pay(sessionId: string, form: CardForm): Promise<PayOutcome> {
    await service.sweepExpiredSessions();
    return inTransaction(db, async (trx) => {
      const session = await lockOpenSession(trx, sessionId);
      if (session === 'not_found' || session === 'closed') return { kind: session };
      const knownEmail = await knownEmailFor(trx, session);
      const checked = validateCardForm(knownEmail ? { ...form, email: knownEmail } : form, {
        now: clock(),
        emailRequired: true,
        fallbackEmail: knownEmail,
      });
      if (!checked.ok) return { kind: 'invalid', errors: checked.errors };
      const paid: PaidWith = {
        paymentMethodId: newId('paymentMethod'),
        card: checked.card.details,
        billingName: checked.card.billingName,
        email: checked.card.email || null,
        number: checked.card.number,
      };
      if (session.mode === 'setup') return completeSetup(trx, session, paid);
      if (session.mode === 'subscription') return startSubscription(trx, session, checked.card.number, paid);
      const pi = await ensurePaymentIntent(trx, session);
      const behaviour = cardBehaviour(checked.card.number);
      if (behaviour.kind === 'succeed') return succeed(trx, session, pi, paid);
      if (behaviour.kind === 'decline') return decline(trx, pi, paid, behaviour);
      const waiting = await store.updatePaymentIntent(trx, pi.id, {
        status: 'requires_action',
        payment_method_id: paid.paymentMethodId,
        last_payment_error: null,
        next_action: { type: 'redirect_to_url', redirect_to_url: { url: checkoutUrl(publicUrl, session.id), return_url: null } },
        pending_card: { payment_method_id: paid.paymentMethodId, card: paid.card, billing_name: paid.billingName, email: paid.email, number: paid.number },
      });
      await recordEvent(trx, AUTOMATIC, 'payment_intent.requires_action', paymentIntentObject(waiting));
      return { kind: 'requires_action' };
    });
  }

  /**
   * Ends the 3-D Secure step of `sessionId`: `complete` pays with the card awaiting
   * authentication; `fail` leaves the session open with the payment intent back in
   * `requires_payment_method` and `last_payment_error.code = payment_intent_authentication_failure`.
   */
  async function authenticate(sessionId: string, action: 'complete' | 'fail'): Promise<AuthenticateOutcome> {
    await service.sweepExpiredSessions();
    return inTransaction(db, async (trx) => {
      const session = await lockOpenSession(trx, sessionId);
      if (session === 'not_found' || session === 'closed') return { kind: session };
      const pi = session.payment_intent_id ? await store.findPaymentIntent(trx, session.payment_intent_id, { forUpdate: true }) : undefined;
      if (!pi || pi.status !== 'requires_action' || !pi.pending_card) return { kind: 'nothing_to_authenticate' };
      const pending = pi.pending_card;
      const paid: PaidWith = {
        paymentMethodId: pending.payment_method_id,
        card: pending.card,
        billingName: pending.billing_name,
        email: pending.email,
        ...(pending.number ? { number: pending.number } : {}),
      };
      if (action === 'complete') return succeed(trx, session, pi, paid);
      const failed = await store.updatePaymentIntent(trx, pi.id, {
        status: 'requires_payment_method',
        payment_method_id: null,
        next_action: null,
        pending_card: null,
        last_payment_error: {
          type: 'invalid_request_error',
          code: 'payment_intent_authentication_failure',
          message:
            'The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.',
          doc_url: 'https://stripe.com/docs/error-codes/payment-intent-authentication-failure',
          payment_method: paymentMethodJson(paid),
        },
      });
      await recordEvent(trx, AUTOMATIC, 'payment_intent.payment_failed', paymentIntentObject(failed));
      return { kind: 'declined', message: AUTH_FAILED_MESSAGE };
    });
  }

  return { loadCheckout, pay, authenticate };
}

export type CheckoutService = ReturnType<typeof createCheckoutService>;
