import crypto from 'node:crypto';
import type Stripe from 'stripe';
import { SCHEMA, type Db, type Trx } from './db.ts';
import { resourceMissing } from './stripe-errors.ts';
import { newId } from './stripe-ids.ts';
import { unix } from './stripe-emulator-objects.ts';
import type { CardDetails } from './stripe-emulator-store.ts';
import { cardBrand } from './test-cards.ts';

/**
 * SetupIntents and the saved cards they make (issue 14), in Stripe's shapes
 * (https://docs.stripe.com/api/setup_intents, https://docs.stripe.com/api/payment_methods): the
 * one place the emulator writes a PaymentMethod row (`stripe_emulator.payment_methods`), whether
 * it comes from `POST /v1/payment_methods`, a Checkout payment (attached to the customer when the
 * session asked for `setup_future_usage`) or a Checkout `setup` session (attached, with a
 * succeeded SetupIntent).
 */

type Q = Db | Trx;
const METHODS = `${SCHEMA}.payment_methods`;
const INTENTS = `${SCHEMA}.setup_intents`;

export interface DbPaymentMethodRow {
  id: string;
  seq: number;
  created: Date;
  customer_id: string | null;
  card: CardDetails;
  billing_details: Record<string, unknown>;
  metadata: Record<string, string>;
  test_number: string;
}

export interface DbSetupIntentRow {
  id: string;
  seq: number;
  created: Date;
  status: 'requires_payment_method' | 'succeeded' | 'canceled';
  usage: 'off_session' | 'on_session';
  customer_id: string | null;
  payment_method_id: string | null;
  client_secret: string;
  metadata: Record<string, string>;
  last_setup_error: Record<string, unknown> | null;
}

/** A test card's details as a PaymentMethod shows them (brand, last 4, expiry, a stable fingerprint). */
export function cardDetails(number: string, expMonth: number, expYear: number): CardDetails {
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

/** Inserts a PaymentMethod of type card (`id` given, e.g. the one a Checkout payment generated, or a new one). */
export async function insertPaymentMethod(
  q: Q,
  m: { id?: string; created: Date; customerId: string | null; number: string; card?: CardDetails; expMonth?: number; expYear?: number; billingDetails?: Record<string, unknown>; metadata?: Record<string, string> },
): Promise<DbPaymentMethodRow> {
  const [row] = (await q(METHODS)
    .insert({
      id: m.id ?? newId('paymentMethod'),
      created: m.created,
      customer_id: m.customerId,
      card: JSON.stringify(m.card ?? cardDetails(m.number, m.expMonth ?? 12, m.expYear ?? m.created.getUTCFullYear() + 3)),
      billing_details: JSON.stringify(m.billingDetails ?? {}),
      metadata: JSON.stringify(m.metadata ?? {}),
      test_number: m.number,
    })
    .returning('*')) as DbPaymentMethodRow[];
  return row!;
}

export async function findPaymentMethod(q: Q, id: string): Promise<DbPaymentMethodRow | undefined> {
  return (await q(METHODS).where({ id }).first()) as DbPaymentMethodRow | undefined;
}

/** The PaymentMethod object (https://docs.stripe.com/api/payment_methods/object). */
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

export async function insertSetupIntent(q: Q, s: { created: Date; customerId: string | null; usage?: 'off_session' | 'on_session'; metadata?: Record<string, string> }): Promise<DbSetupIntentRow> {
  const id = newId('setupIntent');
  const [row] = (await q(INTENTS)
    .insert({
      id,
      created: s.created,
      status: 'requires_payment_method',
      usage: s.usage ?? 'off_session',
      customer_id: s.customerId,
      payment_method_id: null,
      client_secret: `${id}_secret_${crypto.randomBytes(12).toString('base64url')}`,
      metadata: JSON.stringify(s.metadata ?? {}),
    })
    .returning('*')) as DbSetupIntentRow[];
  return row!;
}

export async function updateSetupIntent(q: Q, id: string, patch: Partial<Pick<DbSetupIntentRow, 'status' | 'payment_method_id'>>): Promise<DbSetupIntentRow> {
  const [row] = (await q(INTENTS).where({ id }).update(patch).returning('*')) as DbSetupIntentRow[];
  return row!;
}

export async function findSetupIntent(q: Q, id: string): Promise<DbSetupIntentRow> {
  const row = (await q(INTENTS).where({ id }).first()) as DbSetupIntentRow | undefined;
  if (!row) throw resourceMissing('setup_intent', id, 'intent', 404);
  return row;
}

/** The SetupIntent object (https://docs.stripe.com/api/setup_intents/object). */
export function setupIntentObject(row: DbSetupIntentRow): Stripe.SetupIntent {
  return {
    id: row.id,
    object: 'setup_intent',
    application: null,
    automatic_payment_methods: null,
    cancellation_reason: null,
    client_secret: row.client_secret,
    created: unix(row.created),
    customer: row.customer_id,
    description: null,
    flow_directions: null,
    last_setup_error: row.last_setup_error,
    latest_attempt: null,
    livemode: false,
    mandate: null,
    metadata: row.metadata,
    next_action: null,
    on_behalf_of: null,
    payment_method: row.payment_method_id,
    payment_method_configuration_details: null,
    payment_method_options: { card: { mandate_options: null, network: null, request_three_d_secure: 'automatic' } },
    payment_method_types: ['card'],
    single_use_mandate: null,
    status: row.status,
    usage: row.usage,
  } as unknown as Stripe.SetupIntent;
}
