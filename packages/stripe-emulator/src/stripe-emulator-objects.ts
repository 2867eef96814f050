import type Stripe from 'stripe';
import type {
  DbChargeRow,
  DbCustomerRow,
  DbEventRow,
  DbLineItemRow,
  DbPaymentIntentRow,
  DbRefundRow,
  DbSessionRow,
} from './stripe-emulator-store.ts';

/**
 * Rows → the JSON objects Stripe's API returns, typed with the official SDK's own types
 * (`Stripe.Checkout.Session`, `Stripe.PaymentIntent`, …) so the compiler checks every field the
 * API reference lists is present. Fields of features the emulator does not have (tax, shipping,
 * Connect, …) carry the value Stripe returns when those features are off: `null`, `false`, `[]`.
 */

/** Unix seconds, as Stripe's `created` and other timestamps. */
export function unix(d: Date): number {
  return Math.floor(d.getTime() / 1000);
}

function unixOrNull(d: Date | null): number | null {
  return d ? unix(d) : null;
}

const NULL_ADDRESS: Stripe.Address = { city: null, country: null, line1: null, line2: null, postal_code: null, state: null };

/** The Checkout Session object (https://docs.stripe.com/api/checkout/sessions/object). */
export function sessionObject(row: DbSessionRow, publicUrl: string): Stripe.Checkout.Session {
  return {
    id: row.id,
    object: 'checkout.session',
    adaptive_pricing: null,
    after_expiration: null,
    allow_promotion_codes: null,
    allowed_payment_method_types: null,
    amount_subtotal: row.mode === 'setup' ? null : row.amount_subtotal,
    amount_total: row.mode === 'setup' ? null : row.amount_total,
    automatic_tax: { enabled: false, liability: null, provider: null, status: null },
    billing_address_collection: null,
    cancel_url: row.cancel_url,
    client_reference_id: row.client_reference_id,
    client_secret: null,
    collected_information: null,
    consent: null,
    consent_collection: null,
    created: unix(row.created),
    currency: row.currency,
    currency_conversion: null,
    custom_fields: [],
    custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
    customer: row.customer_id,
    customer_account: null,
    customer_creation: row.customer_id ? null : 'if_required',
    customer_details: row.customer_details
      ? {
          address: null,
          business_name: null,
          email: row.customer_details.email,
          individual_name: null,
          name: row.customer_details.name,
          phone: null,
          tax_exempt: 'none',
          tax_ids: [],
        }
      : null,
    customer_email: row.customer_email,
    discounts: [],
    expires_at: unix(row.expires_at),
    integration_identifier: null,
    invoice: row.invoice_id ?? null,
    invoice_creation: {
      enabled: false,
      invoice_data: {
        account_tax_ids: null,
        custom_fields: null,
        description: null,
        footer: null,
        issuer: null,
        metadata: {},
        rendering_options: null,
      },
    },
    livemode: false,
    locale: null,
    managed_payments: null,
    metadata: row.metadata,
    mode: row.mode,
    origin_context: null,
    payment_intent: row.payment_intent_id,
    payment_link: null,
    payment_method_collection: row.mode === 'subscription' ? 'always' : 'if_required',
    payment_method_configuration_details: null,
    payment_method_options: { card: { request_three_d_secure: 'automatic' } },
    payment_method_types: ['card'],
    payment_status: row.payment_status,
    permissions: null,
    recovered_from: null,
    saved_payment_method_options: null,
    setup_intent: row.setup_intent_id ?? null,
    shipping_address_collection: null,
    shipping_cost: null,
    shipping_options: [],
    status: row.status,
    submit_type: null,
    subscription: row.subscription_id ?? null,
    success_url: row.success_url,
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: 'hosted',
    // Stripe only shows the URL while the session can still be paid.
    url: row.status === 'open' ? checkoutUrl(publicUrl, row.id) : null,
    wallet_options: null,
  };
}

/** Where the hosted checkout page of a session lives on the emulator. */
export function checkoutUrl(publicUrl: string, sessionId: string): string {
  return `${publicUrl}/c/pay/${encodeURIComponent(sessionId)}`;
}

/** A Checkout line item (`object: 'item'`) with its inline price (https://docs.stripe.com/api/checkout/sessions/line_items). */
export function lineItemObject(row: DbLineItemRow): Stripe.LineItem {
  return {
    id: row.id,
    object: 'item',
    adjustable_quantity: null,
    amount_discount: 0,
    amount_subtotal: row.amount_total,
    amount_tax: 0,
    amount_total: row.amount_total,
    currency: row.currency,
    description: row.product_name,
    metadata: row.metadata,
    price: {
      id: row.price_id,
      object: 'price',
      active: false,
      billing_scheme: 'per_unit',
      created: unix(row.created),
      currency: row.currency,
      custom_unit_amount: null,
      livemode: false,
      lookup_key: null,
      metadata: {},
      nickname: null,
      product: row.product_id,
      recurring: null,
      tax_behavior: 'unspecified',
      tiers_mode: null,
      transform_quantity: null,
      type: 'one_time',
      unit_amount: row.unit_amount,
      unit_amount_decimal: String(row.unit_amount) as unknown as Stripe.Price['unit_amount_decimal'],
    },
    quantity: row.quantity,
  };
}

/** The PaymentIntent object (https://docs.stripe.com/api/payment_intents/object). */
export function paymentIntentObject(row: DbPaymentIntentRow): Stripe.PaymentIntent {
  return {
    id: row.id,
    object: 'payment_intent',
    allowed_payment_method_types: null,
    amount: row.amount,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: row.amount_received,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: null,
    canceled_at: unixOrNull(row.canceled_at),
    cancellation_reason: row.cancellation_reason as Stripe.PaymentIntent.CancellationReason | null,
    capture_method: 'automatic_async',
    client_secret: row.client_secret,
    confirmation_method: 'automatic',
    created: unix(row.created),
    currency: row.currency,
    customer: row.customer_id,
    customer_account: null,
    description: row.description,
    excluded_payment_method_types: null,
    last_payment_error: row.last_payment_error as unknown as Stripe.PaymentIntent.LastPaymentError | null,
    latest_charge: row.latest_charge_id,
    livemode: false,
    managed_payments: null,
    metadata: row.metadata,
    next_action: row.next_action as unknown as Stripe.PaymentIntent.NextAction | null,
    on_behalf_of: null,
    payment_method: row.payment_method_id,
    payment_method_configuration_details: null,
    payment_method_options: {
      card: { installments: null, mandate_options: null, network: null, request_three_d_secure: 'automatic' },
    } as Stripe.PaymentIntent.PaymentMethodOptions,
    payment_method_types: ['card'],
    payment_record: null,
    processing: null,
    receipt_email: row.receipt_email,
    review: null,
    setup_future_usage: null,
    shipping: null,
    source: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: row.status,
    transfer_data: null,
    transfer_group: null,
  };
}

/** The Charge object (https://docs.stripe.com/api/charges/object); `refunded` once fully refunded. */
export function chargeObject(row: DbChargeRow, publicUrl: string): Stripe.Charge {
  const succeeded = row.status === 'succeeded';
  return {
    id: row.id,
    object: 'charge',
    amount: row.amount,
    amount_captured: succeeded ? row.amount : 0,
    amount_refunded: row.amount_refunded,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: row.balance_transaction_id,
    billing_details: {
      address: NULL_ADDRESS,
      email: row.billing_details.email,
      name: row.billing_details.name,
      phone: null,
      tax_id: null,
    },
    calculated_statement_descriptor: 'TALLY EMULATOR',
    captured: succeeded,
    created: unix(row.created),
    currency: row.currency,
    customer: row.customer_id,
    description: row.description,
    disputed: false,
    failure_balance_transaction: null,
    failure_code: row.failure_code,
    failure_message: row.failure_message,
    fraud_details: {},
    livemode: false,
    metadata: row.metadata,
    on_behalf_of: null,
    outcome: row.outcome as Stripe.Charge.Outcome,
    paid: succeeded,
    payment_intent: row.payment_intent_id,
    payment_method: row.payment_method_id,
    payment_method_details: {
      card: {
        amount_authorized: succeeded ? row.amount : null,
        authorization_code: null,
        brand: row.card.brand,
        checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: 'pass' },
        country: row.card.country,
        exp_month: row.card.exp_month,
        exp_year: row.card.exp_year,
        fingerprint: row.card.fingerprint,
        funding: row.card.funding,
        installments: null,
        last4: row.card.last4,
        mandate: null,
        network: row.card.brand,
        network_token: { used: false },
        network_transaction_id: null,
        regulated_status: 'unregulated',
        three_d_secure: null,
        wallet: null,
      } as unknown as Stripe.Charge.PaymentMethodDetails.Card,
      type: 'card',
    },
    receipt_email: row.receipt_email,
    receipt_number: null,
    receipt_url: succeeded ? `${publicUrl}/receipts/${encodeURIComponent(row.id)}` : null,
    refunded: succeeded && row.amount_refunded === row.amount,
    review: null,
    shipping: null,
    source: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: row.status,
    transfer_data: null,
    transfer_group: null,
  };
}

/** The Refund object (https://docs.stripe.com/api/refunds/object). */
export function refundObject(row: DbRefundRow): Stripe.Refund {
  return {
    id: row.id,
    object: 'refund',
    amount: row.amount,
    balance_transaction: row.balance_transaction_id,
    charge: row.charge_id,
    created: unix(row.created),
    currency: row.currency,
    customer: null,
    customer_account: null,
    destination_details: {
      card: { reference_status: 'pending', reference_type: 'acquirer_reference_number', type: 'refund' },
      type: 'card',
    } as Stripe.Refund.DestinationDetails,
    metadata: row.metadata,
    payment_intent: row.payment_intent_id,
    payment_method: null,
    reason: row.reason,
    receipt_number: null,
    source_transfer_reversal: null,
    status: row.status,
    transfer_reversal: null,
  };
}

/** The Customer object (https://docs.stripe.com/api/customers/object). */
export function customerObject(row: DbCustomerRow): Stripe.Customer {
  return {
    id: row.id,
    object: 'customer',
    address: null,
    balance: 0,
    created: unix(row.created),
    currency: null,
    default_source: null,
    delinquent: false,
    description: row.description,
    email: row.email,
    invoice_prefix: row.id.slice(4, 12).toUpperCase(),
    invoice_settings: { custom_fields: null, default_payment_method: row.default_payment_method_id ?? null, footer: null, rendering_options: null },
    livemode: false,
    metadata: row.metadata,
    name: row.name,
    next_invoice_sequence: 1,
    phone: row.phone,
    preferred_locales: [],
    shipping: null,
    tax_exempt: 'none',
    test_clock: row.test_clock_id ?? null,
  };
}

/** The Event object (https://docs.stripe.com/api/events/object); `pendingWebhooks` is live. */
export function eventObject(row: DbEventRow, pendingWebhooks: number): Stripe.Event {
  return {
    id: row.id,
    object: 'event',
    api_version: row.api_version,
    created: unix(row.created),
    data: row.data,
    livemode: false,
    pending_webhooks: pendingWebhooks,
    request: { id: row.request_id, idempotency_key: row.idempotency_key },
    type: row.type,
  } as unknown as Stripe.Event;
}

/** A list object (https://docs.stripe.com/api/pagination): `{object: 'list', data, has_more, url}`. */
export interface ListObject<T> {
  object: 'list';
  data: T[];
  has_more: boolean;
  url: string;
}

/** Wraps a page of objects as a list object; `url` is the list's path (e.g. `/v1/events`). */
export function listObject<T>(data: T[], hasMore: boolean, url: string): ListObject<T> {
  return { object: 'list', data, has_more: hasMore, url };
}
