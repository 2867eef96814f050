import crypto from 'node:crypto';
import { z } from 'zod';
import type Stripe from 'stripe';
import { inTransaction, SCHEMA, type Db, type Trx } from './db.ts';
import { invalidRequest, resourceMissing, StripeApiError, type StripeErrorBody } from './stripe-errors.ts';
import { AUTOMATIC, type RecordEvent, type RequestContext } from './stripe-emulator-events.ts';
import { clientSecret, newId } from './stripe-ids.ts';
import { chargeObject, paymentIntentObject, unix } from './stripe-emulator-objects.ts';
import { MAX_AMOUNT } from './stripe-emulator-schemas.ts';
import * as store from './stripe-emulator-store.ts';
import { bool, currency, expandParam, int, metadata, oneOf, str } from './stripe-params.ts';
import { cardBehaviour, cardBrand, luhnValid } from './test-cards.ts';

/**
 * Saved cards and off-session payments (issue 14), in Stripe's shapes:
 * - PaymentMethods of type `card` from a test card number or one of Stripe's test PaymentMethod
 *   ids (`pm_card_visa`, `pm_card_chargeDeclinedInsufficientFunds`, `pm_card_chargeDeclined`,
 *   `pm_card_authenticationRequired`), attached to and detached from customers
 *   (https://docs.stripe.com/api/payment_methods).
 * - `POST /v1/payment_intents` with `confirm=true&off_session=true` on a saved card: the test
 *   card's off-session outcome (https://docs.stripe.com/testing#cards): 4242 succeeds
 *   (`payment_intent.succeeded`, `charge.succeeded`); 9995 insufficient funds and 0002 generic
 *   decline → 402 `card_error` with the PaymentIntent in the error and `payment_intent.payment_failed`;
 *   3184 (3-D Secure required) → 402 `authentication_required`, the PaymentIntent left in
 *   `requires_payment_method` (the customer must come back on-session).
 * The attempt commits in its own transaction before the 402 is answered, as Stripe keeps the
 * failed PaymentIntent and its events.
 */

const TABLE = `${SCHEMA}.payment_methods`;

/** Stripe's test PaymentMethod ids and the card each stands for. */
export const TEST_PAYMENT_METHODS: Readonly<Record<string, string>> = {
  pm_card_visa: '4242424242424242',
  pm_card_chargeDeclinedInsufficientFunds: '4000000000009995',
  pm_card_chargeDeclined: '4000000000000002',
  pm_card_authenticationRequired: '4000002760003184',
};

interface DbPaymentMethodRow {
  id: string;
  seq: number;
  created: Date;
  customer_id: string | null;
  card: store.CardDetails;
  billing_details: Record<string, unknown>;
  metadata: Record<string, string>;
  test_number: string;
}

export const CreatePaymentMethodParams = z.strictObject({
  type: oneOf(['card']),
  card: z.strictObject({ number: str(19), exp_month: int(1, 12), exp_year: int(2000, 2100), cvc: str(4).optional() }),
  billing_details: z.strictObject({ name: str(200).optional(), email: str(512).optional() }).optional(),
  metadata: metadata().optional(),
  expand: expandParam,
});
export const AttachPaymentMethodParams = z.strictObject({ customer: str(500), expand: expandParam });
export const ListPaymentMethodsParams = z.strictObject({ customer: str(500), type: oneOf(['card']).optional(), limit: int(1, 100).optional(), expand: expandParam });
export const CreatePaymentIntentParams = z.strictObject({
  amount: int(1, MAX_AMOUNT),
  currency: currency(),
  customer: str(500).optional(),
  payment_method: str(500).optional(),
  payment_method_types: z.array(oneOf(['card'])).optional(),
  confirm: bool().optional(),
  off_session: bool().optional(),
  description: str(1000).optional(),
  metadata: metadata().optional(),
  expand: expandParam,
});

export function paymentMethodObject(row: DbPaymentMethodRow): Stripe.PaymentMethod {
  return {
    id: row.id,
    object: 'payment_method',
    billing_details: { address: null, email: null, name: null, phone: null, tax_id: null, ...row.billing_details },
    card: { ...row.card, checks: null, display_brand: row.card.brand, networks: null, three_d_secure_usage: { supported: true }, wallet: null },
    created: unix(row.created),
    customer: row.customer_id,
    livemode: false,
    metadata: row.metadata,
    type: 'card',
  } as unknown as Stripe.PaymentMethod;
}

function cardDetails(number: string, expMonth: number, expYear: number): store.CardDetails {
  return {
    brand: cardBrand(number),
    last4: number.slice(-4),
    exp_month: expMonth,
    exp_year: expYear,
    funding: 'credit',
    country: 'US',
    fingerprint: crypto.createHash('sha256').update(`tally-emulator:${number}`).digest('base64url').slice(0, 16),
  };
}

export function createOffSessionPayments(deps: { db: Db; clock: () => Date; recordEvent: RecordEvent; publicUrl: string }) {
  const { db, clock, recordEvent, publicUrl } = deps;

  async function insertMethod(q: Db | Trx, ctx: RequestContext, number: string, expMonth: number, expYear: number, extra: Partial<DbPaymentMethodRow> = {}) {
    const [row] = (await q(TABLE)
      .insert({
        id: newId('paymentMethod'),
        created: clock(),
        customer_id: null,
        card: JSON.stringify(cardDetails(number, expMonth, expYear)),
        billing_details: JSON.stringify(extra.billing_details ?? {}),
        metadata: JSON.stringify(extra.metadata ?? {}),
        test_number: number,
      })
      .returning('*')) as DbPaymentMethodRow[];
    void ctx;
    return row!;
  }

  async function findMethod(q: Db | Trx, id: string, param: string, status: 400 | 404): Promise<DbPaymentMethodRow> {
    const row = (await q(TABLE).where({ id }).first()) as DbPaymentMethodRow | undefined;
    if (!row) throw resourceMissing('PaymentMethod', id, param, status);
    return row;
  }

  const api = {
    async createPaymentMethod(q: Trx, ctx: RequestContext, p: z.output<typeof CreatePaymentMethodParams>): Promise<Stripe.PaymentMethod> {
      const number = p.card.number.replace(/\s+/g, '');
      if (!/^\d{12,19}$/.test(number) || !luhnValid(number)) {
        throw new StripeApiError(402, { type: 'card_error', code: 'incorrect_number', param: 'card[number]', message: 'Your card number is incorrect.' });
      }
      const row = await insertMethod(q, ctx, number, p.card.exp_month, p.card.exp_year, { billing_details: p.billing_details ?? {}, metadata: p.metadata ?? {} });
      return paymentMethodObject(row);
    },

    async retrievePaymentMethod(q: Db | Trx, id: string): Promise<Stripe.PaymentMethod> {
      return paymentMethodObject(await findMethod(q, id, 'payment_method', 404));
    },

    async attachPaymentMethod(q: Trx, ctx: RequestContext, id: string, p: z.output<typeof AttachPaymentMethodParams>): Promise<Stripe.PaymentMethod> {
      const number = TEST_PAYMENT_METHODS[id];
      const row = number ? await insertMethod(q, ctx, number, 12, new Date().getUTCFullYear() + 3) : await findMethod(q, id, 'payment_method', 404);
      if (!(await store.findCustomer(q, p.customer))) throw resourceMissing('customer', p.customer, 'customer', 400);
      if (row.customer_id && row.customer_id !== p.customer) {
        throw invalidRequest('The payment method you provided has already been attached to a customer.', { code: 'payment_method_unexpected_state' });
      }
      const [updated] = (await q(TABLE).where({ id: row.id }).update({ customer_id: p.customer }).returning('*')) as DbPaymentMethodRow[];
      const obj = paymentMethodObject(updated!);
      await recordEvent(q, ctx, 'payment_method.attached', obj);
      return obj;
    },

    async detachPaymentMethod(q: Trx, ctx: RequestContext, id: string): Promise<Stripe.PaymentMethod> {
      const row = await findMethod(q, id, 'payment_method', 404);
      if (!row.customer_id) throw invalidRequest('The payment method you provided is not attached to a customer so detachment is impossible.', { code: 'payment_method_unexpected_state' });
      const [updated] = (await q(TABLE).where({ id }).update({ customer_id: null }).returning('*')) as DbPaymentMethodRow[];
      const obj = paymentMethodObject(updated!);
      await recordEvent(q, ctx, 'payment_method.detached', obj, { customer: row.customer_id });
      return obj;
    },

    async listPaymentMethods(q: Db | Trx, p: z.output<typeof ListPaymentMethodsParams>) {
      const rows = (await q(TABLE).where({ customer_id: p.customer }).orderBy('seq', 'desc').limit((p.limit ?? 10) + 1)) as DbPaymentMethodRow[];
      const limit = p.limit ?? 10;
      return { object: 'list', data: rows.slice(0, limit).map(paymentMethodObject), has_more: rows.length > limit, url: '/v1/payment_methods' };
    },

    /**
     * Creates a PaymentIntent; with `confirm` (and a saved card) charges it at once. Declines and
     * authentication_required are answered 402 with the PaymentIntent, which is kept.
     */
    async createPaymentIntent(_q: Trx, ctx: RequestContext, p: z.output<typeof CreatePaymentIntentParams>): Promise<Stripe.PaymentIntent> {
      if (p.confirm && !p.payment_method) throw invalidRequest('You must provide a payment_method to confirm this PaymentIntent.', { param: 'payment_method' });
      if (p.off_session && !p.confirm) throw invalidRequest('off_session can only be used with confirm=true.', { param: 'off_session' });
      // The attempt commits on its own: a decline answers 402 yet leaves the PaymentIntent and its events.
      const outcome = await inTransaction(db, async (trx) => {
        let method: DbPaymentMethodRow | undefined;
        if (p.payment_method) {
          const number = TEST_PAYMENT_METHODS[p.payment_method];
          method = number ? await insertMethod(trx, ctx, number, 12, new Date().getUTCFullYear() + 3) : await findMethod(trx, p.payment_method, 'payment_method', 400);
          if (p.customer && method.customer_id && method.customer_id !== p.customer) {
            throw invalidRequest(`The provided PaymentMethod ${method.id} does not belong to customer ${p.customer}.`, { param: 'payment_method' });
          }
          if (p.off_session && !method.customer_id && !number) {
            throw invalidRequest('A PaymentMethod must be attached to a customer to be used off-session.', { param: 'payment_method' });
          }
        }
        if (p.customer && !(await store.findCustomer(trx, p.customer))) throw resourceMissing('customer', p.customer, 'customer', 400);
        const id = newId('paymentIntent');
        let pi = await store.insertPaymentIntent(trx, {
          id,
          created: clock(),
          amount: p.amount,
          currency: p.currency,
          status: p.confirm ? 'processing' : method ? 'requires_confirmation' : 'requires_payment_method',
          client_secret: clientSecret(id),
          customer_id: p.customer ?? method?.customer_id ?? null,
          description: p.description ?? null,
          receipt_email: null,
          metadata: p.metadata ?? {},
          payment_method_id: method?.id ?? null,
          latest_charge_id: null,
          amount_received: 0,
          last_payment_error: null,
          next_action: null,
          pending_card: null,
          canceled_at: null,
          cancellation_reason: null,
        });
        await recordEvent(trx, ctx, 'payment_intent.created', paymentIntentObject(pi));
        if (!p.confirm || !method) return { pi, error: null as StripeErrorBody | null };

        const behaviour = cardBehaviour(method.test_number);
        if (behaviour.kind === 'authenticate') {
          // Off-session, a card that needs 3-D Secure cannot be authenticated: the customer must return.
          const error = {
            type: 'card_error' as const,
            code: 'authentication_required',
            decline_code: 'authentication_required',
            message: 'Your card was declined. This transaction requires authentication.',
            doc_url: 'https://stripe.com/docs/error-codes/authentication-required',
          };
          pi = await store.updatePaymentIntent(trx, pi.id, { status: 'requires_payment_method', last_payment_error: { ...error, payment_method: paymentMethodObject(method) } });
          await recordEvent(trx, AUTOMATIC, 'payment_intent.payment_failed', paymentIntentObject(pi));
          return { pi, error };
        }
        const ok = behaviour.kind === 'succeed';
        const charge = await store.insertCharge(trx, {
          id: newId('charge'),
          created: clock(),
          payment_intent_id: pi.id,
          amount: pi.amount,
          amount_refunded: 0,
          currency: pi.currency,
          status: ok ? 'succeeded' : 'failed',
          customer_id: pi.customer_id,
          description: pi.description,
          receipt_email: null,
          metadata: pi.metadata,
          payment_method_id: method.id,
          card: method.card,
          billing_details: { email: null, name: null, ...method.billing_details } as { email: string | null; name: string | null },
          failure_code: ok ? null : behaviour.code,
          failure_message: ok ? null : behaviour.message,
          outcome: ok
            ? { network_status: 'approved_by_network', reason: null, risk_level: 'normal', risk_score: 32, seller_message: 'Payment complete.', type: 'authorized' }
            : { network_status: 'declined_by_network', reason: behaviour.declineCode ?? behaviour.code, risk_level: 'normal', risk_score: 32, seller_message: behaviour.sellerMessage, type: 'issuer_declined' },
          balance_transaction_id: ok ? newId('balanceTransaction') : null,
        });
        await recordEvent(trx, AUTOMATIC, ok ? 'charge.succeeded' : 'charge.failed', chargeObject(charge, publicUrl));
        if (ok) {
          pi = await store.updatePaymentIntent(trx, pi.id, { status: 'succeeded', amount_received: pi.amount, latest_charge_id: charge.id });
          await recordEvent(trx, AUTOMATIC, 'payment_intent.succeeded', paymentIntentObject(pi));
          return { pi, error: null };
        }
        const error = {
          type: 'card_error' as const,
          code: behaviour.code,
          ...(behaviour.declineCode ? { decline_code: behaviour.declineCode } : {}),
          message: behaviour.message,
          doc_url: `https://stripe.com/docs/error-codes/${behaviour.code.replace(/_/g, '-')}`,
        };
        pi = await store.updatePaymentIntent(trx, pi.id, {
          status: 'requires_payment_method',
          latest_charge_id: charge.id,
          last_payment_error: { ...error, charge: charge.id, payment_method: paymentMethodObject(method) },
        });
        await recordEvent(trx, AUTOMATIC, 'payment_intent.payment_failed', paymentIntentObject(pi));
        return { pi, error: { ...error, charge: charge.id } as StripeErrorBody };
      });
      if (outcome.error) {
        throw new StripeApiError(402, { ...outcome.error, payment_intent: paymentIntentObject(outcome.pi) } as unknown as StripeErrorBody);
      }
      return paymentIntentObject(outcome.pi);
    },
  };
  return api;
}

export type OffSessionPayments = ReturnType<typeof createOffSessionPayments>;
