import type Stripe from 'stripe';
import { inTransaction, type Db, type Trx } from './db.ts';
import type { Logger } from 'pino';
import { formatAmount, minimumChargeAmount } from './currency.ts';
import { invalidRequest, resourceMissing } from './stripe-errors.ts';
import { AUTOMATIC, type RecordEvent, type RequestContext } from './stripe-emulator-events.ts';
import { newId } from './stripe-ids.ts';
import {
  chargeObject,
  customerObject,
  eventObject,
  lineItemObject,
  listObject,
  paymentIntentObject,
  refundObject,
  sessionObject,
  type ListObject,
} from './stripe-emulator-objects.ts';
import {
  MAX_AMOUNT,
  type CreateCheckoutSessionParams,
  type CreateCustomerParams,
  type CreateRefundParams,
  type ListCheckoutSessionsParams,
  type ListCustomersParams,
  type ListEventsParams,
  type ListLineItemsParams,
  type ListRefundsParams,
} from './stripe-emulator-schemas.ts';
import * as store from './stripe-emulator-store.ts';
import type { BillingService } from './billing-service.ts';
import type { DbSessionRow, PageRequest } from './stripe-emulator-store.ts';

/**
 * The emulated Stripe API: what each endpoint does to the emulator's state, the events it
 * records, and the errors real Stripe gives for the same mistakes. Returns Stripe-shaped objects.
 * Writes take the transaction (`q`) the router opened for the request, so an idempotent request's
 * effects and its stored response commit together.
 */

type Q = Db | Trx;
type JsonObject = Record<string, unknown>;

export interface StripeEmulatorServiceDeps {
  db: Db;
  logger: Logger;
  /** Base URL of the emulator as browsers reach it (for `session.url`). */
  publicUrl: string;
  clock: () => Date;
  recordEvent: RecordEvent;
  /** Stripe Billing (prices, test clocks) for `mode: subscription` sessions and customers on a clock. */
  billing: BillingService;
}

const DAY_MS = 24 * 60 * 60 * 1000;
const MIN_EXPIRY_MS = 30 * 60 * 1000;

function page(p: { limit?: number | undefined; starting_after?: string | undefined; ending_before?: string | undefined }): PageRequest {
  if (p.starting_after !== undefined && p.ending_before !== undefined) {
    throw invalidRequest('You may only specify one of these parameters: ending_before, starting_after.', { param: 'ending_before' });
  }
  return { limit: p.limit ?? 10, startingAfter: p.starting_after, endingBefore: p.ending_before };
}

/** Fields each object type lets `expand[]` replace with the object it names. */
const EXPANDABLE: Record<string, readonly string[]> = {
  'checkout.session': ['customer', 'payment_intent', 'line_items'],
  payment_intent: ['customer', 'latest_charge'],
  charge: ['customer', 'payment_intent'],
  refund: ['charge', 'payment_intent'],
  list: ['data'],
};

interface ExpandTree extends Map<string, ExpandTree> {}

function expandTree(paths: string[]): ExpandTree {
  const root: ExpandTree = new Map();
  for (const path of paths) {
    const parts = path.split('.');
    if (parts.length > 4) {
      throw invalidRequest(`You cannot expand more than 4 levels of a property. Property: ${path}`, { param: 'expand' });
    }
    let node = root;
    for (const part of parts) {
      let next = node.get(part);
      if (!next) {
        next = new Map();
        node.set(part, next);
      }
      node = next;
    }
  }
  return root;
}

/**
 * Creates the service behind the `/v1` routes. Each method returns the Stripe object (JSON shape)
 * the endpoint answers with, and throws `StripeApiError` with Stripe's error for bad requests
 * (404 `resource_missing` for an unknown id in the path, 400 otherwise).
 */
export function createStripeEmulatorService(deps: StripeEmulatorServiceDeps) {
  const { db, publicUrl, clock, recordEvent, billing } = deps;

  // ------------------------------------------------------------------------------------------
  // Lookups

  async function sessionRow(q: Q, id: string, options: { forUpdate?: boolean; param?: string; status?: 400 | 404 } = {}): Promise<DbSessionRow> {
    const row = await store.findSession(q, id, options);
    if (!row) throw resourceMissing('checkout.session', id, options.param ?? 'session', options.status ?? 404);
    return row;
  }

  async function byId(q: Q, id: string): Promise<JsonObject | null> {
    if (id.startsWith('cus_')) {
      const r = await store.findCustomer(q, id);
      return r ? (customerObject(r) as unknown as JsonObject) : null;
    }
    if (id.startsWith('pi_')) {
      const r = await store.findPaymentIntent(q, id);
      return r ? (paymentIntentObject(r) as unknown as JsonObject) : null;
    }
    if (id.startsWith('ch_')) {
      const r = await store.findCharge(q, id);
      return r ? (chargeObject(r, publicUrl) as unknown as JsonObject) : null;
    }
    if (id.startsWith('re_')) {
      const r = await store.findRefund(q, id);
      return r ? (refundObject(r) as unknown as JsonObject) : null;
    }
    if (id.startsWith('cs_')) {
      const r = await store.findSession(q, id);
      return r ? (sessionObject(r, publicUrl) as unknown as JsonObject) : null;
    }
    return null;
  }

  async function lineItemsList(q: Q, sessionId: string, p: PageRequest): Promise<ListObject<Stripe.LineItem>> {
    const result = await store.listLineItems(q, sessionId, p);
    return listObject(result.rows.map(lineItemObject), result.hasMore, `/v1/checkout/sessions/${sessionId}/line_items`);
  }

  async function expandNode(q: Q, obj: JsonObject, tree: ExpandTree, prefix: string): Promise<JsonObject> {
    const out: JsonObject = { ...obj };
    for (const [field, sub] of tree) {
      const path = prefix ? `${prefix}.${field}` : field;
      const allowed = EXPANDABLE[String(obj.object)] ?? [];
      if (!allowed.includes(field)) throw invalidRequest(`This property cannot be expanded (${path}).`, { param: 'expand' });
      let value: unknown = obj[field];
      if (obj.object === 'list' && field === 'data') {
        const items = value as JsonObject[];
        out.data = await Promise.all(items.map((item) => expandNode(q, item, sub, path)));
        continue;
      }
      if (obj.object === 'checkout.session' && field === 'line_items') {
        value = await lineItemsList(q, String(obj.id), { limit: 10 });
      } else if (typeof value === 'string') {
        value = await byId(q, value);
      }
      if (value && typeof value === 'object' && sub.size > 0) value = await expandNode(q, value as JsonObject, sub, path);
      out[field] = value;
    }
    return out;
  }

  /**
   * Applies `expand[]` (https://docs.stripe.com/api/expanding_objects) to an object or a list
   * (whose paths start with `data.`). Up to 4 levels.
   * @throws StripeApiError 400 for a path that cannot be expanded.
   */
  async function expand<T extends object>(q: Q, obj: T, paths: string[] | undefined): Promise<T> {
    if (!paths || paths.length === 0) return obj;
    return (await expandNode(q, obj as unknown as JsonObject, expandTree(paths), '')) as unknown as T;
  }

  // ------------------------------------------------------------------------------------------
  // Session expiry

  /**
   * Expires an open session: `status: expired`, its payment intent (if a payment was attempted)
   * canceled, and `checkout.session.expired` recorded
   * (https://docs.stripe.com/api/checkout/sessions/expire). `row` must be locked by the caller
   * or have just been updated by the expiry sweep.
   */
  async function finishExpiry(q: Q, ctx: RequestContext, row: DbSessionRow): Promise<DbSessionRow> {
    const now = clock();
    const expired = row.status === 'expired' ? row : await store.updateSession(q, row.id, { status: 'expired', expired_at: now });
    if (expired.payment_intent_id) {
      const pi = await store.findPaymentIntent(q, expired.payment_intent_id, { forUpdate: true });
      if (pi && pi.status !== 'succeeded' && pi.status !== 'canceled') {
        const canceled = await store.updatePaymentIntent(q, pi.id, {
          status: 'canceled',
          canceled_at: now,
          cancellation_reason: 'abandoned',
          next_action: null,
          pending_card: null,
        });
        await recordEvent(q, ctx, 'payment_intent.canceled', paymentIntentObject(canceled));
      }
    }
    await recordEvent(q, ctx, 'checkout.session.expired', sessionObject(expired, publicUrl));
    return expired;
  }

  /**
   * Expires every open session past its `expires_at` (Stripe does this on its own; sessions live
   * 24 hours by default). Returns how many expired.
   */
  async function sweepExpiredSessions(): Promise<number> {
    return inTransaction(db, async (trx) => {
      const rows = await store.expireDueSessions(trx, clock());
      for (const row of rows) await finishExpiry(trx, AUTOMATIC, row);
      return rows.length;
    });
  }

  // ------------------------------------------------------------------------------------------
  // Customers

  async function createCustomer(q: Q, ctx: RequestContext, p: CreateCustomerParams): Promise<Stripe.Customer> {
    if (p.test_clock !== undefined) await billing.get(q, 'test_helpers.test_clock', p.test_clock, 'test_clock');
    const row = await store.insertCustomer(q, {
      test_clock_id: p.test_clock ?? null,
      id: newId('customer'),
      created: clock(),
      email: p.email ?? null,
      name: p.name ?? null,
      description: p.description ?? null,
      phone: p.phone ?? null,
      metadata: p.metadata ?? {},
    });
    const obj = customerObject(row);
    await recordEvent(q, ctx, 'customer.created', obj);
    return expand(q, obj, p.expand);
  }

  async function retrieveCustomer(q: Q, id: string, paths?: string[]): Promise<Stripe.Customer> {
    const row = await store.findCustomer(q, id);
    if (!row) throw resourceMissing('customer', id, 'id');
    // Stripe answers a deleted customer with this stub (https://docs.stripe.com/api/customers/delete)
    if (row.deleted_at) return { id, object: 'customer', deleted: true } as unknown as Stripe.Customer;
    return expand(q, customerObject(row), paths);
  }

  /**
   * `DELETE /v1/customers/:id`: cancels the customer's subscriptions at once (as Stripe does),
   * clears its personal fields, sends `customer.deleted`, and returns `{id, object, deleted: true}`.
   * Deleting it again is a 404 `resource_missing`, like Stripe.
   */
  async function deleteCustomer(q: Trx, ctx: RequestContext, id: string): Promise<Stripe.DeletedCustomer> {
    const row = await store.findCustomer(q, id);
    if (!row || row.deleted_at) throw resourceMissing('customer', id, 'id');
    for (;;) {
      const subs = await billing.list(q, 'subscription', { customer_id: id }, 100);
      const open = subs.data.filter((s) => s.status !== 'canceled');
      for (const s of open) await billing.cancelSubscription(q, ctx, String(s.id));
      if (!subs.has_more || open.length === 0) break;
    }
    const obj = customerObject(row);
    await store.markCustomerDeleted(q, id, clock());
    await recordEvent(q, ctx, 'customer.deleted', obj);
    return { id, object: 'customer', deleted: true };
  }

  async function listCustomers(q: Q, p: ListCustomersParams): Promise<ListObject<Stripe.Customer>> {
    const result = await store.listCustomers(q, { email: p.email, created: p.created }, page(p));
    return expand(q, listObject(result.rows.map(customerObject), result.hasMore, '/v1/customers'), p.expand);
  }

  // ------------------------------------------------------------------------------------------
  // Checkout sessions

  /**
   * `mode: subscription` (https://docs.stripe.com/billing/subscriptions/build-subscriptions):
   * one line item naming a recurring price, quantity 1. Paying creates the subscription and its
   * first invoice (billing-service.ts `startFromCheckout`).
   */
  async function createSubscriptionSession(q: Q, p: CreateCheckoutSessionParams): Promise<Stripe.Checkout.Session> {
    const items = p.line_items ?? [];
    if (items.length !== 1) throw invalidRequest('The Stripe emulator supports one line item in subscription mode.', { param: 'line_items' });
    const item = items[0]!;
    if (item.price === undefined) throw invalidRequest('In subscription mode, line_items[0][price] must name a recurring price.', { param: 'line_items[0][price]' });
    if (p.payment_intent_data !== undefined) {
      throw invalidRequest('You can not pass `payment_intent_data` in `subscription` mode.', { param: 'payment_intent_data' });
    }
    const price = (await billing.find(q, 'price', item.price)) as (Record<string, unknown> & { recurring: unknown; currency: string; unit_amount: number; product: string }) | undefined;
    if (!price) throw resourceMissing('price', item.price, 'line_items[0][price]', 400);
    if (!price.recurring) {
      throw invalidRequest('You must provide at least one recurring price in `subscription` mode when using prices.', { param: 'line_items[0][price]' });
    }
    if ((item.quantity ?? 1) !== 1) throw invalidRequest('The Stripe emulator sells quantity 1 in subscription mode.', { param: 'line_items[0][quantity]' });
    if (p.customer !== undefined && !(await store.findCustomer(q, p.customer))) throw resourceMissing('customer', p.customer, 'customer', 400);
    const product = (await billing.find(q, 'product', price.product)) as { name: string; description: string | null } | undefined;
    const now = clock();
    const row = await store.insertSession(q, {
      id: newId('checkoutSession'),
      created: now,
      expires_at: new Date(now.getTime() + DAY_MS),
      status: 'open',
      payment_status: 'unpaid',
      mode: 'subscription',
      currency: price.currency,
      amount_subtotal: price.unit_amount,
      amount_total: price.unit_amount,
      success_url: p.success_url ?? null,
      cancel_url: p.cancel_url ?? null,
      client_reference_id: p.client_reference_id ?? null,
      customer_id: p.customer ?? null,
      customer_email: p.customer_email ?? null,
      customer_details: null,
      metadata: p.metadata ?? {},
      payment_intent_data: { metadata: {}, description: null, receipt_email: null },
      payment_intent_id: null,
      completed_at: null,
      expired_at: null,
      price_id: String(price.id),
      subscription_id: null,
      invoice_id: null,
    });
    await store.insertLineItems(q, [
      {
        id: newId('lineItem'),
        session_id: row.id,
        position: 0,
        created: now,
        price_id: String(price.id),
        product_id: price.product,
        product_name: product?.name ?? 'Subscription',
        product_description: product?.description ?? null,
        product_metadata: {},
        metadata: item.metadata ?? {},
        currency: price.currency,
        unit_amount: price.unit_amount,
        quantity: 1,
        amount_total: price.unit_amount,
      },
    ]);
    return expand(q, sessionObject(row, publicUrl), p.expand);
  }

  async function createSession(q: Q, ctx: RequestContext, p: CreateCheckoutSessionParams): Promise<Stripe.Checkout.Session> {
    void ctx; // Stripe records no event when a session is created.
    if (p.mode === 'subscription') return createSubscriptionSession(q, p);
    if (p.mode !== 'payment') {
      throw invalidRequest(`The Stripe emulator only supports mode=payment or subscription, not mode=${p.mode}.`, { param: 'mode' });
    }
    const items = p.line_items ?? [];
    if (items.length === 0) {
      throw invalidRequest('Missing required param: line_items.', { param: 'line_items', code: 'parameter_missing' });
    }
    const lines = items.map((item, i) => {
      const at = `line_items[${i}]`;
      if (item.price !== undefined) throw resourceMissing('price', item.price, `${at}[price]`, 400);
      const pd = item.price_data;
      if (!pd) throw invalidRequest(`You must specify either \`price\` or \`price_data\` in ${at}.`, { param: at, code: 'parameter_missing' });
      if (pd.product !== undefined) throw resourceMissing('product', pd.product, `${at}[price_data][product]`, 400);
      if (!pd.product_data) {
        throw invalidRequest(`Missing required param: ${at}[price_data][product_data].`, {
          param: `${at}[price_data][product_data]`,
          code: 'parameter_missing',
        });
      }
      if (pd.unit_amount === undefined) {
        throw invalidRequest(`Missing required param: ${at}[price_data][unit_amount].`, {
          param: `${at}[price_data][unit_amount]`,
          code: 'parameter_missing',
        });
      }
      if (item.quantity === undefined) {
        throw invalidRequest(`Missing required param: ${at}[quantity].`, { param: `${at}[quantity]`, code: 'parameter_missing' });
      }
      return { pd, productData: pd.product_data, unitAmount: pd.unit_amount, quantity: item.quantity, metadata: item.metadata ?? {} };
    });
    const currency = lines[0]!.pd.currency;
    if (lines.some((l) => l.pd.currency !== currency)) {
      throw invalidRequest('Checkout does not support multiple currencies: every line item must use the same currency.', {
        param: 'line_items',
      });
    }
    const total = lines.reduce((sum, l) => sum + l.unitAmount * l.quantity, 0);
    if (total > MAX_AMOUNT) {
      throw invalidRequest(`The Checkout Session's total amount due must be no more than ${formatAmount(MAX_AMOUNT, currency)}.`, {
        param: 'line_items',
        code: 'amount_too_large',
      });
    }
    const minimum = minimumChargeAmount(currency);
    if (total < minimum) {
      throw invalidRequest(
        `The Checkout Session's total amount due must add up to at least ${formatAmount(minimum, currency)} ${currency}`,
        { param: 'line_items', code: 'amount_too_small' },
      );
    }
    if (p.customer !== undefined && p.customer_email !== undefined) {
      throw invalidRequest('You may only specify one of these parameters: customer, customer_email.', { param: 'customer_email' });
    }
    if (p.customer !== undefined && !(await store.findCustomer(q, p.customer))) {
      throw resourceMissing('customer', p.customer, 'customer', 400);
    }
    const now = clock();
    let expiresAt = new Date(now.getTime() + DAY_MS);
    if (p.expires_at !== undefined) {
      const ms = p.expires_at * 1000 - now.getTime();
      if (ms < MIN_EXPIRY_MS - 1000) {
        throw invalidRequest('The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.', { param: 'expires_at' });
      }
      if (ms > DAY_MS) {
        throw invalidRequest('The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.', { param: 'expires_at' });
      }
      expiresAt = new Date(p.expires_at * 1000);
    }
    const row = await store.insertSession(q, {
      id: newId('checkoutSession'),
      created: now,
      expires_at: expiresAt,
      status: 'open',
      payment_status: 'unpaid',
      mode: 'payment',
      currency,
      amount_subtotal: total,
      amount_total: total,
      success_url: p.success_url ?? null,
      cancel_url: p.cancel_url ?? null,
      client_reference_id: p.client_reference_id ?? null,
      customer_id: p.customer ?? null,
      customer_email: p.customer_email ?? null,
      customer_details: null,
      metadata: p.metadata ?? {},
      payment_intent_data: {
        metadata: p.payment_intent_data?.metadata ?? {},
        description: p.payment_intent_data?.description ?? null,
        receipt_email: p.payment_intent_data?.receipt_email ?? null,
      },
      payment_intent_id: null,
      completed_at: null,
      expired_at: null,
    });
    await store.insertLineItems(
      q,
      lines.map((l, position) => ({
        id: newId('lineItem'),
        session_id: row.id,
        position,
        created: now,
        price_id: newId('price'),
        product_id: newId('product'),
        product_name: l.productData.name,
        product_description: l.productData.description ?? null,
        product_metadata: l.productData.metadata ?? {},
        metadata: l.metadata,
        currency,
        unit_amount: l.unitAmount,
        quantity: l.quantity,
        amount_total: l.unitAmount * l.quantity,
      })),
    );
    return expand(q, sessionObject(row, publicUrl), p.expand);
  }

  async function retrieveSession(q: Q, id: string, paths?: string[]): Promise<Stripe.Checkout.Session> {
    await sweepExpiredSessions();
    return expand(q, sessionObject(await sessionRow(q, id), publicUrl), paths);
  }

  async function listSessions(q: Q, p: ListCheckoutSessionsParams): Promise<ListObject<Stripe.Checkout.Session>> {
    await sweepExpiredSessions();
    const result = await store.listSessions(
      q,
      {
        status: p.status as store.SessionStatus | undefined,
        customerId: p.customer,
        paymentIntentId: p.payment_intent,
        customerEmail: p.customer_details?.email,
        created: p.created,
      },
      page(p),
    );
    const list = listObject(result.rows.map((r) => sessionObject(r, publicUrl)), result.hasMore, '/v1/checkout/sessions');
    return expand(q, list, p.expand);
  }

  async function expireSession(q: Q, ctx: RequestContext, id: string, paths?: string[]): Promise<Stripe.Checkout.Session> {
    const row = await sessionRow(q, id, { forUpdate: true });
    if (row.status !== 'open') {
      throw invalidRequest(
        `Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of \`${row.status}\`.`,
      );
    }
    const expired = await finishExpiry(q, ctx, row);
    return expand(q, sessionObject(expired, publicUrl), paths);
  }

  async function listSessionLineItems(q: Q, id: string, p: ListLineItemsParams): Promise<ListObject<Stripe.LineItem>> {
    await sessionRow(q, id);
    return expand(q, await lineItemsList(q, id, page(p)), p.expand);
  }

  // ------------------------------------------------------------------------------------------
  // Payment intents and charges (read-only through the API; the checkout page creates them)

  async function retrievePaymentIntent(q: Q, id: string, paths?: string[]): Promise<Stripe.PaymentIntent> {
    const row = await store.findPaymentIntent(q, id);
    if (!row) throw resourceMissing('payment_intent', id, 'intent');
    return expand(q, paymentIntentObject(row), paths);
  }

  async function retrieveCharge(q: Q, id: string, paths?: string[]): Promise<Stripe.Charge> {
    const row = await store.findCharge(q, id);
    if (!row) throw resourceMissing('charge', id, 'id');
    return expand(q, chargeObject(row, publicUrl), paths);
  }

  // ------------------------------------------------------------------------------------------
  // Refunds

  /**
   * Refunds all that is left of a charge, or `amount` of it (https://docs.stripe.com/api/refunds/create).
   * Records `refund.created` and `charge.refunded` (whose object is the charge with the new
   * `amount_refunded`/`refunded`; https://docs.stripe.com/api/events/types#event_types-charge.refunded).
   * @throws StripeApiError 400 `charge_already_refunded`, `amount_too_large` ("Refund amount
   *   ($25.00) is greater than unrefunded amount on charge ($21.45)"), or a missing object.
   */
  async function createRefund(q: Q, ctx: RequestContext, p: CreateRefundParams): Promise<Stripe.Refund> {
    if (p.payment_intent === undefined && p.charge === undefined) {
      throw invalidRequest('One of the following params should be provided for this request: payment_intent or charge.', {
        param: 'payment_intent',
        code: 'parameter_missing',
      });
    }
    let chargeId = p.charge;
    if (p.payment_intent !== undefined) {
      const pi = await store.findPaymentIntent(q, p.payment_intent);
      if (!pi) throw resourceMissing('payment_intent', p.payment_intent, 'payment_intent', 400);
      if (pi.status !== 'succeeded' || !pi.latest_charge_id) {
        throw invalidRequest(`This PaymentIntent (${pi.id}) does not have a successful charge to refund.`, {
          param: 'payment_intent',
          code: 'charge_not_refundable',
        });
      }
      if (chargeId !== undefined && chargeId !== pi.latest_charge_id) {
        throw invalidRequest(`The charge ${chargeId} does not belong to PaymentIntent ${pi.id}.`, { param: 'charge' });
      }
      chargeId = pi.latest_charge_id;
    }
    // Lock the charge: concurrent refunds of one charge are serialized and can't over-refund.
    const charge = await store.findCharge(q, chargeId!, { forUpdate: true });
    if (!charge) throw resourceMissing('charge', chargeId!, 'charge', 400);
    if (charge.status !== 'succeeded') {
      throw invalidRequest(`Charge ${charge.id} has not succeeded and cannot be refunded.`, { param: 'charge', code: 'charge_not_refundable' });
    }
    const remaining = charge.amount - charge.amount_refunded;
    if (remaining === 0) {
      throw invalidRequest(`Charge ${charge.id} has already been refunded.`, { param: 'charge', code: 'charge_already_refunded' });
    }
    const amount = p.amount ?? remaining;
    if (amount > remaining) {
      throw invalidRequest(
        `Refund amount (${formatAmount(amount, charge.currency)}) is greater than unrefunded amount on charge (${formatAmount(remaining, charge.currency)})`,
        { param: 'amount', code: 'amount_too_large' },
      );
    }
    const updated = await store.addRefundedAmount(q, charge.id, amount);
    if (!updated) throw invalidRequest(`Charge ${charge.id} has already been refunded.`, { param: 'charge', code: 'charge_already_refunded' });
    const refund = await store.insertRefund(q, {
      id: newId('refund'),
      created: clock(),
      charge_id: charge.id,
      payment_intent_id: charge.payment_intent_id,
      amount,
      currency: charge.currency,
      reason: p.reason ?? null,
      status: 'succeeded',
      metadata: p.metadata ?? {},
      balance_transaction_id: newId('balanceTransaction'),
    });
    const refundObj = refundObject(refund);
    await recordEvent(q, ctx, 'refund.created', refundObj);
    const previous: Record<string, unknown> = { amount_refunded: charge.amount_refunded };
    if (updated.amount_refunded === updated.amount) previous.refunded = false;
    await recordEvent(q, ctx, 'charge.refunded', chargeObject(updated, publicUrl), previous);
    return expand(q, refundObj, p.expand);
  }

  async function retrieveRefund(q: Q, id: string, paths?: string[]): Promise<Stripe.Refund> {
    const row = await store.findRefund(q, id);
    if (!row) throw resourceMissing('refund', id, 'id');
    return expand(q, refundObject(row), paths);
  }

  async function listRefunds(q: Q, p: ListRefundsParams): Promise<ListObject<Stripe.Refund>> {
    const result = await store.listRefunds(q, { chargeId: p.charge, paymentIntentId: p.payment_intent, created: p.created }, page(p));
    return expand(q, listObject(result.rows.map(refundObject), result.hasMore, '/v1/refunds'), p.expand);
  }

  // ------------------------------------------------------------------------------------------
  // Events

  async function retrieveEvent(q: Q, id: string, paths?: string[]): Promise<Stripe.Event> {
    const row = await store.findEvent(q, id);
    if (!row) throw resourceMissing('event', id, 'id');
    const pending = await store.pendingWebhookCounts(q, [row.id]);
    return expand(q, eventObject(row, pending.get(row.id) ?? 0), paths);
  }

  async function listEvents(q: Q, p: ListEventsParams): Promise<ListObject<Stripe.Event>> {
    if (p.type !== undefined && p.types !== undefined) {
      throw invalidRequest('You may only specify one of these parameters: type, types.', { param: 'types' });
    }
    const types = p.types ?? (p.type !== undefined ? [p.type] : undefined);
    const result = await store.listEvents(q, { types, created: p.created }, page(p));
    const pending = await store.pendingWebhookCounts(q, result.rows.map((r) => r.id));
    const data = result.rows.map((r) => eventObject(r, pending.get(r.id) ?? 0));
    return expand(q, listObject(data, result.hasMore, '/v1/events'), p.expand);
  }

  return {
    expand,
    finishExpiry,
    sweepExpiredSessions,
    createCustomer,
    retrieveCustomer,
    deleteCustomer,
    listCustomers,
    createSession,
    retrieveSession,
    listSessions,
    expireSession,
    listSessionLineItems,
    retrievePaymentIntent,
    retrieveCharge,
    createRefund,
    retrieveRefund,
    listRefunds,
    retrieveEvent,
    listEvents,
  };
}

export type StripeEmulatorService = ReturnType<typeof createStripeEmulatorService>;
