import type Stripe from 'stripe';
import { SCHEMA, inTransaction, type Db, type Trx } from './db.ts';
import { invalidRequest, resourceMissing, StripeApiError } from './stripe-errors.ts';
import { AUTOMATIC, type RecordEvent, type RequestContext } from './stripe-emulator-events.ts';
import { listObject, unix, type ListObject } from './stripe-emulator-objects.ts';
import { randomBase62 } from './stripe-ids.ts';
import type { CardDetails, DbCustomerRow, DbSessionRow } from './stripe-emulator-store.ts';
import { cardBehaviour } from './test-cards.ts';
import { findPaymentMethod, insertPaymentMethod, paymentMethodObject, type DbPaymentMethodRow } from './setup-intents.ts';

/**
 * Stripe Billing, the subset Tally uses (https://docs.stripe.com/api/subscriptions,
 * /api/invoices, /api/test_clocks, /api/customer_portal/sessions):
 * - products and recurring prices (lookup keys);
 * - subscriptions started by Checkout (`mode: subscription`), updated with proration
 *   (`proration_behavior: always_invoice | none`), cancelled at period end and resumed;
 * - invoices, paid or failed with automatic retries (3, 5 and 7 days after the first failure; after
 *   the fourth failed attempt the subscription is cancelled, Stripe's default dunning setting);
 * - test clocks: a customer on a clock lives at the clock's `frozen_time`; advancing the clock
 *   renews its subscriptions and retries its invoices in time order, as Stripe does;
 * - billing portal sessions (the page itself is billing-portal-page.ts).
 *
 * Objects are kept as the JSON Stripe serves (`billing_objects.data`). Amounts are integer minor
 * units. Advancing a clock completes within the request: the clock is `ready` when it answers.
 */

type Q = Db | Trx;
type Json = Record<string, unknown>;
const T = `${SCHEMA}.billing_objects`;
const CUSTOMERS = `${SCHEMA}.customers`;
const DAY = 86_400;
/** Smart-retry stand-in: retry 3, 5 and 7 days after the first failure, then give up. */
const RETRY_DAYS = [3, 5, 7];

export type BillingObjectName = 'product' | 'price' | 'subscription' | 'invoice' | 'billing_portal.session' | 'test_helpers.test_clock';

const PREFIX: Record<BillingObjectName | 'subscription_item' | 'line' | 'payment_method', string> = {
  product: 'prod_',
  price: 'price_',
  subscription: 'sub_',
  invoice: 'in_',
  'billing_portal.session': 'bps_',
  'test_helpers.test_clock': 'clock_',
  subscription_item: 'si_',
  line: 'il_',
  payment_method: 'pm_',
};
const newBillingId = (kind: keyof typeof PREFIX) => PREFIX[kind] + randomBase62(kind === 'billing_portal.session' ? 24 : 14);

/** The card a customer pays subscriptions with: its default PaymentMethod (`customers.default_payment_method_id`), as billing charges it. */
export interface SavedCard {
  id: string;
  card: CardDetails;
  /** The full test number is never kept; only what it does when charged off-session. */
  outcome: 'succeed' | 'decline';
  decline?: { code: string; decline_code: string | null; message: string };
}

/** `date` + `n` calendar months in UTC, clamped to the month's end (Stripe's billing anchors). */
export function addMonths(unixSeconds: number, n: number): number {
  const d = new Date(unixSeconds * 1000);
  const day = d.getUTCDate();
  const target = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + n, 1, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()));
  const last = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(day, last));
  return unix(target);
}

/** The end of the billing period that starts at `start` (anchor `anchor`) for `recurring`. */
function periodEnd(anchor: number, start: number, recurring: { interval: string; interval_count: number }): number {
  const months = recurring.interval === 'year' ? 12 * recurring.interval_count : recurring.interval === 'month' ? recurring.interval_count : 0;
  if (months === 0) return start + (recurring.interval === 'week' ? 7 : 1) * DAY * recurring.interval_count;
  for (let k = 1; ; k++) {
    const end = addMonths(anchor, k * months);
    if (end > start) return end;
  }
}

export interface BillingDeps {
  db: Db;
  publicUrl: string;
  clock: () => Date;
  recordEvent: RecordEvent;
}

/** Creates the Billing part of the emulator (see the module comment). */
export function createBillingService(deps: BillingDeps) {
  const { db, publicUrl, clock, recordEvent } = deps;

  // ------------------------------------------------------------------------------------------
  // Storage

  async function insert(q: Q, obj: Json, cols: { customer_id?: string | null; subscription_id?: string | null; test_clock_id?: string | null; lookup_key?: string | null } = {}): Promise<Json> {
    await q(T).insert({
      id: obj.id,
      object: obj.object,
      created: new Date(Number(obj.created) * 1000),
      customer_id: cols.customer_id ?? null,
      subscription_id: cols.subscription_id ?? null,
      test_clock_id: cols.test_clock_id ?? null,
      lookup_key: cols.lookup_key ?? null,
      status: (obj.status as string | undefined) ?? null,
      data: JSON.stringify(obj),
    });
    return obj;
  }
  async function save(q: Q, obj: Json): Promise<Json> {
    await q(T)
      .where({ id: obj.id })
      .update({ data: JSON.stringify(obj), status: (obj.status as string | undefined) ?? null });
    return obj;
  }
  async function find(q: Q, object: BillingObjectName, id: string, forUpdate = false): Promise<Json | undefined> {
    const qb = q(T).select('data').where({ id, object });
    if (forUpdate && (q as Trx).isTransaction) qb.forUpdate();
    const row = (await qb.first()) as { data: Json } | undefined;
    return row?.data;
  }
  async function get(q: Q, object: BillingObjectName, id: string, param = 'id', forUpdate = false): Promise<Json> {
    const obj = await find(q, object, id, forUpdate);
    if (!obj) throw resourceMissing(object.replace('test_helpers.', '').replace('billing_portal.', 'billing_portal.'), id, param);
    return obj;
  }
  async function list(q: Q, object: BillingObjectName, filter: Record<string, string | undefined>, limit = 10, startingAfter?: string): Promise<ListObject<Json>> {
    const qb = q(T).select('data').where({ object });
    for (const [k, v] of Object.entries(filter)) if (v !== undefined) qb.where(k, v);
    if (startingAfter) {
      const cursor = (await q(T).select('seq').where({ id: startingAfter }).first()) as { seq: number } | undefined;
      if (!cursor) throw resourceMissing(object, startingAfter, 'starting_after', 400);
      qb.where('seq', '<', cursor.seq);
    }
    const rows = (await qb.orderBy('seq', 'desc').limit(limit + 1)) as Array<{ data: Json }>;
    const path = { product: 'products', price: 'prices', subscription: 'subscriptions', invoice: 'invoices', 'billing_portal.session': 'billing_portal/sessions', 'test_helpers.test_clock': 'test_helpers/test_clocks' }[object];
    return listObject(rows.slice(0, limit).map((r) => r.data), rows.length > limit, `/v1/${path}`);
  }
  async function customerRow(q: Q, id: string, param = 'customer', status: 400 | 404 = 400, forUpdate = false): Promise<DbCustomerRow & { test_clock_id: string | null; default_payment_method: SavedCard | null }> {
    const qb = q(CUSTOMERS).where({ id });
    if (forUpdate && (q as Trx).isTransaction) qb.forUpdate();
    const row = await qb.first();
    if (!row) throw resourceMissing('customer', id, param, status);
    const pm = row.default_payment_method_id ? await findPaymentMethod(q, row.default_payment_method_id) : undefined;
    return { ...row, default_payment_method: pm ? savedCardOf(pm) : null };
  }

  /** What billing needs of a PaymentMethod: its card and what its test number does when charged. */
  function savedCardOf(pm: DbPaymentMethodRow): SavedCard {
    const b = cardBehaviour(pm.test_number);
    return {
      id: pm.id,
      card: pm.card,
      outcome: b.kind === 'succeed' ? 'succeed' : 'decline',
      ...(b.kind === 'decline' ? { decline: { code: b.code, decline_code: b.declineCode, message: b.message } } : {}),
    };
  }

  /** Saves `card` as a PaymentMethod attached to the customer and makes it the default for invoices. */
  async function setDefaultCard(trx: Trx, customerId: string, card: { id?: string; details: CardDetails; number: string }): Promise<DbPaymentMethodRow> {
    const pm = await insertPaymentMethod(trx, { ...(card.id ? { id: card.id } : {}), created: clock(), customerId, number: card.number, card: card.details });
    await trx(CUSTOMERS).where({ id: customerId }).update({ default_payment_method_id: pm.id });
    return pm;
  }

  /** "Now" for a customer: its test clock's frozen time, or the emulator's clock. Unix seconds. */
  async function nowFor(q: Q, customerId: string | null): Promise<number> {
    if (customerId) {
      const c = (await q(CUSTOMERS).select('test_clock_id').where({ id: customerId }).first()) as { test_clock_id: string | null } | undefined;
      if (c?.test_clock_id) {
        const clk = await find(q, 'test_helpers.test_clock', c.test_clock_id);
        if (clk) return Number(clk.frozen_time);
      }
    }
    return unix(clock());
  }

  // ------------------------------------------------------------------------------------------
  // Products and prices

  async function createProduct(q: Q, ctx: RequestContext, p: { name: string; description?: string | undefined; metadata?: Record<string, string> | undefined }): Promise<Json> {
    const now = unix(clock());
    const product = await insert(q, {
      id: newBillingId('product'),
      object: 'product',
      active: true,
      created: now,
      default_price: null,
      description: p.description ?? null,
      images: [],
      livemode: false,
      marketing_features: [],
      metadata: p.metadata ?? {},
      name: p.name,
      package_dimensions: null,
      shippable: null,
      statement_descriptor: null,
      tax_code: null,
      type: 'service',
      unit_label: null,
      updated: now,
      url: null,
    });
    await recordEvent(q, ctx, 'product.created', product);
    return product;
  }

  async function createPrice(
    q: Q,
    ctx: RequestContext,
    p: {
      currency: string;
      unit_amount: number;
      product?: string | undefined;
      product_data?: { name: string; metadata?: Record<string, string> | undefined } | undefined;
      recurring?: { interval: 'day' | 'week' | 'month' | 'year'; interval_count?: number | undefined } | undefined;
      lookup_key?: string | undefined;
      transfer_lookup_key?: boolean | undefined;
      nickname?: string | undefined;
      metadata?: Record<string, string> | undefined;
    },
  ): Promise<Json> {
    if ((p.product === undefined) === (p.product_data === undefined)) {
      throw invalidRequest('You must specify exactly one of `product` or `product_data`.', { param: 'product' });
    }
    const productId = p.product ?? String((await createProduct(q, ctx, { name: p.product_data!.name, metadata: p.product_data!.metadata })).id);
    if (p.product) await get(q, 'product', p.product, 'product');
    if (p.lookup_key) {
      const holder = (await q(T).select('id', 'data').where({ object: 'price', lookup_key: p.lookup_key }).first()) as { id: string; data: Json } | undefined;
      if (holder) {
        if (!p.transfer_lookup_key) {
          throw invalidRequest(`A price (\`${holder.id}\`) already uses that lookup key.`, { param: 'lookup_key' });
        }
        await q(T).where({ id: holder.id }).update({ lookup_key: null });
        await save(q, { ...holder.data, lookup_key: null });
      }
    }
    const now = unix(clock());
    const recurring = p.recurring
      ? { interval: p.recurring.interval, interval_count: p.recurring.interval_count ?? 1, meter: null, trial_period_days: null, usage_type: 'licensed' }
      : null;
    const price = await insert(
      q,
      {
        id: newBillingId('price'),
        object: 'price',
        active: true,
        billing_scheme: 'per_unit',
        created: now,
        currency: p.currency,
        custom_unit_amount: null,
        livemode: false,
        lookup_key: p.lookup_key ?? null,
        metadata: p.metadata ?? {},
        nickname: p.nickname ?? null,
        product: productId,
        recurring,
        tax_behavior: 'unspecified',
        tiers_mode: null,
        transform_quantity: null,
        type: recurring ? 'recurring' : 'one_time',
        unit_amount: p.unit_amount,
        unit_amount_decimal: String(p.unit_amount),
      },
      { lookup_key: p.lookup_key ?? null },
    );
    await recordEvent(q, ctx, 'price.created', price);
    return price;
  }

  async function listPrices(q: Q, p: { lookup_keys?: string[] | undefined; active?: boolean | undefined; product?: string | undefined; limit?: number | undefined; starting_after?: string | undefined }): Promise<ListObject<Json>> {
    if (p.lookup_keys && p.lookup_keys.length > 0) {
      const rows = (await q(T).select('data').where({ object: 'price' }).whereIn('lookup_key', p.lookup_keys).orderBy('seq', 'desc')) as Array<{ data: Json }>;
      return listObject(rows.map((r) => r.data).filter((d) => p.active === undefined || d.active === p.active), false, '/v1/prices');
    }
    const page = await list(q, 'price', {}, p.limit ?? 10, p.starting_after);
    page.data = page.data.filter((d) => (p.active === undefined || d.active === p.active) && (p.product === undefined || d.product === p.product));
    return page;
  }

  // ------------------------------------------------------------------------------------------
  // Test clocks

  async function createTestClock(q: Q, ctx: RequestContext, p: { frozen_time: number; name?: string | undefined }): Promise<Json> {
    const now = unix(clock());
    const clk = await insert(q, {
      id: newBillingId('test_helpers.test_clock'),
      object: 'test_helpers.test_clock',
      created: now,
      deletes_after: now + 30 * DAY,
      frozen_time: p.frozen_time,
      livemode: false,
      name: p.name ?? null,
      status: 'ready',
      status_details: {},
    });
    await recordEvent(q, ctx, 'test_helpers.test_clock.created', clk);
    return clk;
  }

  // ------------------------------------------------------------------------------------------
  // Subscriptions and invoices

  function itemOf(sub: Json): Json {
    return ((sub.items as { data: Json[] }).data)[0]!;
  }
  function priceOf(sub: Json): Json {
    return itemOf(sub).price as Json;
  }

  function subscriptionObject(p: { id: string; itemId: string; customer: string; price: Json; start: number; end: number; created: number; testClock: string | null; metadata: Record<string, string>; paymentMethod: string | null }): Json {
    return {
      id: p.id,
      object: 'subscription',
      application: null,
      application_fee_percent: null,
      automatic_tax: { disabled_reason: null, enabled: false, liability: null },
      billing_cycle_anchor: p.start,
      billing_cycle_anchor_config: null,
      billing_mode: { type: 'flexible', flexible: { proration_discounts: 'included' }, updated_at: p.created },
      billing_thresholds: null,
      cancel_at: null,
      cancel_at_period_end: false,
      canceled_at: null,
      cancellation_details: { comment: null, feedback: null, reason: null },
      collection_method: 'charge_automatically',
      created: p.created,
      currency: p.price.currency,
      customer: p.customer,
      days_until_due: null,
      default_payment_method: p.paymentMethod,
      default_source: null,
      default_tax_rates: [],
      description: null,
      discounts: [],
      ended_at: null,
      invoice_settings: { account_tax_ids: null, issuer: { type: 'self' } },
      items: {
        object: 'list',
        data: [
          {
            id: p.itemId,
            object: 'subscription_item',
            billing_thresholds: null,
            created: p.created,
            current_period_end: p.end,
            current_period_start: p.start,
            discounts: [],
            metadata: {},
            plan: planOf(p.price),
            price: p.price,
            quantity: 1,
            subscription: p.id,
            tax_rates: [],
          },
        ],
        has_more: false,
        total_count: 1,
        url: `/v1/subscription_items?subscription=${p.id}`,
      },
      latest_invoice: null,
      livemode: false,
      metadata: p.metadata,
      next_pending_invoice_item_invoice: null,
      on_behalf_of: null,
      pause_collection: null,
      payment_settings: { payment_method_options: null, payment_method_types: null, save_default_payment_method: 'off' },
      pending_invoice_item_interval: null,
      pending_setup_intent: null,
      pending_update: null,
      schedule: null,
      start_date: p.start,
      status: 'incomplete',
      test_clock: p.testClock,
      transfer_data: null,
      trial_end: null,
      trial_settings: { end_behavior: { missing_payment_method: 'create_invoice' } },
      trial_start: null,
    };
  }

  /** The legacy `plan` view of a recurring price, still on subscription items. */
  function planOf(price: Json): Json {
    const r = price.recurring as { interval: string; interval_count: number };
    return {
      id: price.id,
      object: 'plan',
      active: price.active,
      amount: price.unit_amount,
      amount_decimal: price.unit_amount_decimal,
      billing_scheme: 'per_unit',
      created: price.created,
      currency: price.currency,
      interval: r.interval,
      interval_count: r.interval_count,
      livemode: false,
      metadata: price.metadata,
      meter: null,
      nickname: price.nickname,
      product: price.product,
      tiers_mode: null,
      transform_usage: null,
      trial_period_days: null,
      usage_type: 'licensed',
    };
  }

  interface LineInput {
    amount: number;
    description: string;
    period: { start: number; end: number };
    proration: boolean;
    price: Json;
  }

  async function createInvoice(q: Q, sub: Json, reason: 'subscription_create' | 'subscription_cycle' | 'subscription_update', lines: LineInput[], at: number): Promise<Json> {
    const id = newBillingId('invoice');
    const customer = String(sub.customer);
    const total = lines.reduce((s, l) => s + l.amount, 0);
    const due = Math.max(0, total);
    const seq = Number(((await q(T).count({ n: '*' }).where({ object: 'invoice', customer_id: customer }).first()) as { n: string | number }).n) + 1;
    const c = await customerRow(q, customer);
    const inv: Json = {
      id,
      object: 'invoice',
      account_country: 'US',
      account_name: 'Tally (Stripe emulator)',
      account_tax_ids: null,
      amount_due: due,
      amount_overpaid: 0,
      amount_paid: 0,
      amount_remaining: due,
      amount_shipping: 0,
      application: null,
      attempt_count: 0,
      attempted: false,
      auto_advance: true,
      automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
      automatically_finalizes_at: null,
      billing_reason: reason,
      collection_method: 'charge_automatically',
      created: at,
      currency: (sub.currency as string) ?? 'usd',
      custom_fields: null,
      customer,
      customer_account: null,
      customer_address: null,
      customer_email: c.email,
      customer_name: c.name,
      customer_phone: null,
      customer_shipping: null,
      customer_tax_exempt: 'none',
      customer_tax_ids: [],
      default_payment_method: null,
      default_source: null,
      default_tax_rates: [],
      description: null,
      discounts: [],
      due_date: null,
      effective_at: at,
      ending_balance: 0,
      footer: null,
      from_invoice: null,
      hosted_invoice_url: `${publicUrl}/i/${id}`,
      invoice_pdf: null,
      issuer: { type: 'self' },
      last_finalization_error: null,
      latest_revision: null,
      lines: {
        object: 'list',
        data: lines.map((l) => ({
          id: newBillingId('line'),
          object: 'line_item',
          amount: l.amount,
          currency: sub.currency,
          description: l.description,
          discount_amounts: [],
          discountable: !l.proration,
          discounts: [],
          invoice: id,
          livemode: false,
          metadata: {},
          parent: {
            type: 'subscription_item_details',
            invoice_item_details: null,
            subscription_item_details: {
              invoice_item: null,
              proration: l.proration,
              proration_details: { credited_items: null },
              subscription: sub.id,
              subscription_item: itemOf(sub).id,
            },
          },
          period: l.period,
          pretax_credit_amounts: [],
          pricing: { type: 'price_details', price_details: { price: l.price.id, product: l.price.product }, unit_amount_decimal: String(l.amount) },
          quantity: 1,
          subscription: sub.id,
          subtotal: l.amount,
          taxes: [],
        })),
        has_more: false,
        total_count: lines.length,
        url: `/v1/invoices/${id}/lines`,
      },
      livemode: false,
      metadata: {},
      next_payment_attempt: null,
      number: `${c.id.slice(4, 12).toUpperCase()}-${String(seq).padStart(4, '0')}`,
      on_behalf_of: null,
      parent: { type: 'subscription_details', quote_details: null, subscription_details: { metadata: sub.metadata, subscription: sub.id } },
      payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
      period_end: reason === 'subscription_cycle' ? lines[0]!.period.start : at,
      period_start: reason === 'subscription_cycle' ? Number(itemOf(sub).current_period_start) : at,
      post_payment_credit_notes_amount: 0,
      pre_payment_credit_notes_amount: 0,
      receipt_number: null,
      rendering: null,
      shipping_cost: null,
      shipping_details: null,
      starting_balance: 0,
      statement_descriptor: null,
      status: 'open',
      status_transitions: { finalized_at: at, marked_uncollectible_at: null, paid_at: null, voided_at: null },
      subtotal: total,
      subtotal_excluding_tax: total,
      test_clock: sub.test_clock,
      total,
      total_discount_amounts: [],
      total_excluding_tax: total,
      total_pretax_credit_amounts: [],
      total_taxes: [],
      webhooks_delivered_at: at,
    };
    await insert(q, inv, { customer_id: customer, subscription_id: String(sub.id), test_clock_id: (sub.test_clock as string | null) ?? null });
    await recordEvent(q, AUTOMATIC, 'invoice.created', inv);
    await recordEvent(q, AUTOMATIC, 'invoice.finalized', inv);
    return inv;
  }

  /**
   * Tries to collect `inv` with the customer's saved card at `at`. `first`: the payment made in
   * Checkout (a card that only fails off-session goes through). Paid → `invoice.paid` and
   * `invoice.payment_succeeded`; declined → `invoice.payment_failed` with the next retry.
   */
  async function attemptPayment(q: Q, ctx: RequestContext, inv: Json, at: number, card: SavedCard | null, first = false): Promise<{ paid: boolean; invoice: Json; error?: { code: string; decline_code: string | null; message: string } }> {
    const attempt = Number(inv.attempt_count) + 1;
    const ok = Number(inv.amount_due) === 0 || (card !== null && (card.outcome === 'succeed' || first));
    if (ok) {
      const paid = {
        ...inv,
        status: 'paid',
        attempted: true,
        attempt_count: attempt,
        amount_paid: inv.amount_due,
        amount_remaining: 0,
        next_payment_attempt: null,
        default_payment_method: card?.id ?? null,
        status_transitions: { ...(inv.status_transitions as Json), paid_at: at },
      };
      await save(q, paid);
      await recordEvent(q, ctx, 'invoice.paid', paid);
      await recordEvent(q, ctx, 'invoice.payment_succeeded', paid);
      return { paid: true, invoice: paid };
    }
    const error = card?.decline ?? { code: 'card_declined', decline_code: 'generic_decline', message: 'The customer has no card to charge.' };
    const retryIn = RETRY_DAYS[attempt - 1];
    const failed = {
      ...inv,
      attempted: true,
      attempt_count: attempt,
      next_payment_attempt: retryIn === undefined ? null : Number(inv.created) + retryIn * DAY,
      last_payment_error: { type: 'card_error', ...error },
    };
    await save(q, failed);
    await recordEvent(q, ctx, 'invoice.payment_failed', failed);
    return { paid: false, invoice: failed, error };
  }

  async function setSubscription(q: Q, ctx: RequestContext, before: Json, after: Json): Promise<Json> {
    const previous: Json = {};
    for (const k of Object.keys(after)) if (JSON.stringify(before[k]) !== JSON.stringify(after[k])) previous[k] = before[k] ?? null;
    await save(q, after);
    if (Object.keys(previous).length > 0) {
      const type = after.status === 'canceled' && before.status !== 'canceled' ? 'customer.subscription.deleted' : 'customer.subscription.updated';
      await recordEvent(q, ctx, type, after, type === 'customer.subscription.updated' ? previous : undefined);
    }
    return after;
  }

  /** A subscription's status once `inv` settled: active when nothing is left open, else past_due. */
  async function statusAfter(q: Q, sub: Json): Promise<string> {
    const open = await q(T).where({ object: 'invoice', subscription_id: sub.id, status: 'open' }).first();
    return open ? 'past_due' : 'active';
  }

  /**
   * Checkout's side of `mode: subscription`: saves the card on the customer, creates the
   * subscription and its first invoice and pays it. Returns the ids for the session, or the decline.
   */
  async function startFromCheckout(trx: Trx, session: DbSessionRow, card: { id: string; details: CardDetails; number: string }): Promise<{ ok: true; subscriptionId: string; invoiceId: string; customerId: string } | { ok: false; message: string }> {
    const behaviour = cardBehaviour(card.number);
    const failsLater = card.number === '4000000000000341';
    if (behaviour.kind === 'decline' && !failsLater) return { ok: false, message: behaviour.message };
    const price = await get(trx, 'price', String(session.price_id));
    let customerId = session.customer_id;
    if (!customerId) {
      customerId = `cus_${randomBase62(14)}`;
      await trx(CUSTOMERS).insert({ id: customerId, created: clock(), email: session.customer_email, name: null, metadata: '{}' });
    }
    await setDefaultCard(trx, customerId, card);
    const c = await customerRow(trx, customerId);
    const now = await nowFor(trx, customerId);
    const recurring = price.recurring as { interval: string; interval_count: number };
    const end = periodEnd(now, now, recurring);
    const sub = subscriptionObject({
      id: newBillingId('subscription'),
      itemId: newBillingId('subscription_item'),
      customer: customerId,
      price,
      start: now,
      end,
      created: now,
      testClock: c.test_clock_id,
      metadata: session.metadata,
      paymentMethod: card.id,
    });
    await insert(trx, sub, { customer_id: customerId, test_clock_id: c.test_clock_id });
    await recordEvent(trx, AUTOMATIC, 'customer.subscription.created', sub);
    const inv = await createInvoice(trx, sub, 'subscription_create', [
      { amount: Number(price.unit_amount), description: `1 × ${await productName(trx, price)} (at ${money(price)} / ${recurring.interval})`, period: { start: now, end }, proration: false, price },
    ], now);
    await attemptPayment(trx, AUTOMATIC, inv, now, c.default_payment_method, true);
    await setSubscription(trx, AUTOMATIC, sub, { ...sub, status: 'active', latest_invoice: inv.id });
    return { ok: true, subscriptionId: String(sub.id), invoiceId: String(inv.id), customerId };
  }

  async function productName(q: Q, price: Json): Promise<string> {
    const product = await find(q, 'product', String(price.product));
    return String(product?.name ?? 'Subscription');
  }
  function money(price: Json): string {
    return `${String(price.currency).toUpperCase()} ${(Number(price.unit_amount) / 100).toFixed(2)}`;
  }

  /** Renews `sub` at the end of its period `at` (or ends it, when cancelled at period end). */
  async function renew(q: Q, sub: Json): Promise<void> {
    const item = itemOf(sub);
    const at = Number(item.current_period_end);
    if (sub.cancel_at_period_end) {
      await setSubscription(q, AUTOMATIC, sub, { ...sub, status: 'canceled', ended_at: at, canceled_at: sub.canceled_at ?? at });
      return;
    }
    const price = priceOf(sub);
    const recurring = price.recurring as { interval: string; interval_count: number };
    const end = periodEnd(Number(sub.billing_cycle_anchor), at, recurring);
    const renewed: Json = {
      ...sub,
      items: { ...(sub.items as Json), data: [{ ...item, current_period_start: at, current_period_end: end }] },
    };
    const inv = await createInvoice(q, renewed, 'subscription_cycle', [
      { amount: Number(price.unit_amount), description: `1 × ${await productName(q, price)} (at ${money(price)} / ${recurring.interval})`, period: { start: at, end }, proration: false, price },
    ], at);
    const c = await customerRow(q, String(sub.customer));
    const result = await attemptPayment(q, AUTOMATIC, inv, at, c.default_payment_method);
    await setSubscription(q, AUTOMATIC, sub, { ...renewed, latest_invoice: inv.id, status: result.paid ? await statusAfter(q, renewed) : 'past_due' });
  }

  /** An automatic retry of an open invoice at its `next_payment_attempt`. */
  async function retry(q: Q, inv: Json): Promise<void> {
    const at = Number(inv.next_payment_attempt);
    const c = await customerRow(q, String(inv.customer));
    const result = await attemptPayment(q, AUTOMATIC, inv, at, c.default_payment_method);
    const subId = (inv.parent as { subscription_details: { subscription: string } }).subscription_details.subscription;
    const sub = await get(q, 'subscription', subId);
    if (sub.status === 'canceled') return;
    if (result.paid) {
      await setSubscription(q, AUTOMATIC, sub, { ...sub, status: await statusAfter(q, sub) });
    } else if (result.invoice.next_payment_attempt === null) {
      // All retries failed: Stripe's default is to cancel the subscription (and leave the invoice open).
      await setSubscription(q, AUTOMATIC, sub, { ...sub, status: 'canceled', ended_at: at, canceled_at: at, cancellation_details: { comment: null, feedback: null, reason: 'payment_failed' } });
    }
  }

  /**
   * Moves a test clock to `frozenTime`, running what falls due on its customers' subscriptions in
   * time order (renewals, cancellations at period end, invoice retries). Answers `ready`.
   */
  async function advanceTestClock(q: Trx, ctx: RequestContext, id: string, frozenTime: number): Promise<Json> {
    const clk = await get(q, 'test_helpers.test_clock', id, 'test_clock', true);
    if (frozenTime <= Number(clk.frozen_time)) {
      throw invalidRequest('The frozen_time must be after the current frozen_time of the test clock.', { param: 'frozen_time' });
    }
    if (frozenTime > Number(clk.frozen_time) + 2 * 366 * DAY) {
      throw invalidRequest('Cannot advance a test clock more than two intervals of the longest subscription at once (two years in the emulator).', { param: 'frozen_time' });
    }
    for (let guard = 0; guard < 1000; guard++) {
      const subs = (await q(T).select('data').where({ object: 'subscription', test_clock_id: id }).whereIn('status', ['active', 'past_due'])) as Array<{ data: Json }>;
      const invs = (await q(T).select('data').where({ object: 'invoice', test_clock_id: id, status: 'open' })) as Array<{ data: Json }>;
      type Due = { at: number; run: () => Promise<void> };
      const due: Due[] = [
        ...subs.map((s) => ({ at: Number(itemOf(s.data).current_period_end), run: () => renew(q, s.data) })),
        ...invs.filter((i) => i.data.next_payment_attempt !== null).map((i) => ({ at: Number(i.data.next_payment_attempt), run: () => retry(q, i.data) })),
      ].filter((d) => d.at <= frozenTime);
      if (due.length === 0) break;
      due.sort((a, b) => a.at - b.at);
      const next = due[0]!;
      await save(q, { ...clk, frozen_time: next.at });
      await next.run();
    }
    const ready = { ...clk, frozen_time: frozenTime, status: 'ready' };
    await save(q, ready);
    await recordEvent(q, ctx, 'test_helpers.test_clock.ready', ready);
    return ready;
  }

  /**
   * `POST /v1/subscriptions/:id`: `cancel_at_period_end`, and a price change of the one item with
   * `proration_behavior` `always_invoice` (prorated invoice now, charged at once) or `none` (the new
   * price from the next renewal). Proration is by the second, as Stripe's.
   */
  async function updateSubscription(
    q: Trx,
    ctx: RequestContext,
    id: string,
    p: { cancel_at_period_end?: boolean | undefined; items?: Array<{ id?: string | undefined; price?: string | undefined }> | undefined; proration_behavior?: 'always_invoice' | 'create_prorations' | 'none' | undefined; metadata?: Record<string, string> | undefined },
  ): Promise<Json> {
    let sub = await get(q, 'subscription', id, 'id', true);
    if (sub.status === 'canceled') {
      throw invalidRequest('A canceled subscription can only update its cancellation_details and metadata.', { param: 'cancel_at_period_end' });
    }
    if (p.metadata) sub = await setSubscription(q, ctx, sub, { ...sub, metadata: { ...(sub.metadata as Json), ...p.metadata } });
    if (p.cancel_at_period_end !== undefined) {
      const end = Number(itemOf(sub).current_period_end);
      const now = await nowFor(q, String(sub.customer));
      sub = await setSubscription(q, ctx, sub, {
        ...sub,
        cancel_at_period_end: p.cancel_at_period_end,
        cancel_at: p.cancel_at_period_end ? end : null,
        canceled_at: p.cancel_at_period_end ? now : null,
        cancellation_details: { comment: null, feedback: null, reason: p.cancel_at_period_end ? 'cancellation_requested' : null },
      });
    }
    const change = p.items?.[0];
    if (change?.price) {
      const item = itemOf(sub);
      if (change.id !== undefined && change.id !== item.id) throw resourceMissing('subscription_item', change.id, 'items[0][id]', 400);
      const behaviour = p.proration_behavior ?? 'create_prorations';
      if (behaviour === 'create_prorations') {
        throw invalidRequest('The Stripe emulator supports proration_behavior=always_invoice or none for price changes.', { param: 'proration_behavior' });
      }
      const oldPrice = item.price as Json;
      const newPrice = await get(q, 'price', change.price, 'items[0][price]');
      const oldR = oldPrice.recurring as { interval: string; interval_count: number };
      const newR = newPrice.recurring as { interval: string; interval_count: number } | null;
      if (!newR) throw invalidRequest('The price specified is set to `type=one_time` but this field only accepts prices with `type=recurring`.', { param: 'items[0][price]' });
      if (newPrice.currency !== oldPrice.currency) throw invalidRequest('The new price must have the same currency as the subscription.', { param: 'items[0][price]' });
      if (newR.interval !== oldR.interval || newR.interval_count !== oldR.interval_count) {
        throw invalidRequest('The Stripe emulator only changes between prices of the same billing interval.', { param: 'items[0][price]' });
      }
      const updated: Json = { ...sub, items: { ...(sub.items as Json), data: [{ ...item, price: newPrice, plan: planOf(newPrice) }] } };
      if (behaviour === 'none') {
        sub = await setSubscription(q, ctx, sub, updated);
      } else {
        const now = await nowFor(q, String(sub.customer));
        const start = Number(item.current_period_start);
        const end = Number(item.current_period_end);
        const left = Math.max(0, end - now);
        const whole = end - start;
        const share = (amount: number) => Math.round((amount * left) / whole);
        const name = async (pr: Json) => productName(q, pr);
        const when = new Date(now * 1000).toISOString().slice(0, 10);
        sub = await setSubscription(q, ctx, sub, updated);
        const inv = await createInvoice(q, sub, 'subscription_update', [
          { amount: -share(Number(oldPrice.unit_amount)), description: `Unused time on ${await name(oldPrice)} after ${when}`, period: { start: now, end }, proration: true, price: oldPrice },
          { amount: share(Number(newPrice.unit_amount)), description: `Remaining time on ${await name(newPrice)} after ${when}`, period: { start: now, end }, proration: true, price: newPrice },
        ], now);
        const c = await customerRow(q, String(sub.customer));
        const result = await attemptPayment(q, ctx, inv, now, c.default_payment_method);
        sub = await setSubscription(q, ctx, sub, { ...sub, latest_invoice: inv.id, status: result.paid ? await statusAfter(q, sub) : 'past_due' });
      }
    }
    return sub;
  }

  /** `POST /v1/subscriptions/:id/resume` is for paused subscriptions; undoing a cancel is `cancel_at_period_end=false`. */
  async function cancelSubscription(q: Trx, ctx: RequestContext, id: string): Promise<Json> {
    const sub = await get(q, 'subscription', id, 'id', true);
    if (sub.status === 'canceled') return sub;
    const now = await nowFor(q, String(sub.customer));
    return setSubscription(q, ctx, sub, { ...sub, status: 'canceled', canceled_at: now, ended_at: now, cancel_at_period_end: false, cancellation_details: { comment: null, feedback: null, reason: 'cancellation_requested' } });
  }

  /**
   * `POST /v1/invoices/:id/pay`: charges the customer's saved card now.
   * @throws StripeApiError 402 `card_error` when declined (the invoice stays open).
   */
  async function payInvoice(q: Trx, ctx: RequestContext, id: string): Promise<Json> {
    const inv = await get(q, 'invoice', id, 'invoice', true);
    if (inv.status === 'paid') throw invalidRequest('Invoice is already paid', { param: 'invoice', code: 'invoice_already_paid' } as never);
    if (inv.status !== 'open') throw invalidRequest(`You can only pay an open invoice; this one is ${String(inv.status)}.`, { param: 'invoice' });
    const c = await customerRow(q, String(inv.customer));
    const at = await nowFor(q, c.id);
    const result = await attemptPayment(q, ctx, inv, at, c.default_payment_method);
    const subId = (inv.parent as { subscription_details: { subscription: string } }).subscription_details.subscription;
    const sub = await get(q, 'subscription', subId);
    if (sub.status !== 'canceled') await setSubscription(q, ctx, sub, { ...sub, status: await statusAfter(q, sub) });
    if (!result.paid) {
      throw new StripeApiError(402, { type: 'card_error', code: result.error!.code, decline_code: result.error!.decline_code ?? undefined, message: result.error!.message } as never);
    }
    return result.invoice;
  }

  /** Saves a new default card on the customer (portal "update payment method") and retries open invoices with it. */
  async function updateCard(customerId: string, card: { details: CardDetails; number: string }): Promise<{ paid: number; failed: number }> {
    return inTransaction(db, async (trx) => {
      await customerRow(trx, customerId, 'customer', 404, true);
      const pm = await setDefaultCard(trx, customerId, card);
      await recordEvent(trx, AUTOMATIC, 'payment_method.attached', paymentMethodObject(pm) as unknown as Json);
      let paid = 0;
      let failed = 0;
      const open = (await trx(T).select('id').where({ object: 'invoice', customer_id: customerId, status: 'open' }).orderBy('seq')) as Array<{ id: string }>;
      for (const { id } of open) {
        try {
          await trx.transaction((sp) => payInvoice(sp, AUTOMATIC, id));
          paid++;
        } catch (err) {
          if (!(err instanceof StripeApiError)) throw err;
          failed++;
        }
      }
      return { paid, failed };
    });
  }

  async function createPortalSession(q: Q, ctx: RequestContext, p: { customer: string; return_url?: string | undefined }): Promise<Json> {
    await customerRow(q, p.customer);
    const id = newBillingId('billing_portal.session');
    const session = await insert(
      q,
      {
        id,
        object: 'billing_portal.session',
        configuration: 'bpc_emulator_default',
        created: unix(clock()),
        customer: p.customer,
        customer_account: null,
        flow: null,
        livemode: false,
        locale: null,
        on_behalf_of: null,
        return_url: p.return_url ?? null,
        url: `${publicUrl}/p/session/${id}`,
      },
      { customer_id: p.customer },
    );
    void ctx; // Stripe records no event for a portal session.
    return session;
  }

  return {
    find,
    get,
    list,
    customerRow,
    nowFor,
    createProduct,
    createPrice,
    listPrices,
    createTestClock,
    advanceTestClock,
    startFromCheckout,
    updateSubscription,
    cancelSubscription,
    payInvoice,
    updateCard,
    createPortalSession,
  };
}

export type BillingService = ReturnType<typeof createBillingService>;
