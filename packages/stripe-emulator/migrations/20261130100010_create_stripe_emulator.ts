import type { Knex } from 'knex';

/**
 * State of the Stripe emulator (@tally/stripe-emulator): the objects it serves, the events it
 * creates, the webhook deliveries still owed, and the idempotency keys it has seen.
 *
 * Every table lives in the schema `stripe_emulator` (created by migrateStripeEmulator before this
 * runs), never in the host application's schema; nothing in Tally reads them: the app talks to the
 * emulator through the Stripe SDK only. Amounts are integer minor units of `currency`, as in
 * Stripe's API. `seq` orders objects for list pagination (newest first).
 */
const S = 'stripe_emulator';

/** Bare table names (constraint and index names start with them). */
const N = {
  customers: 'customers',
  sessions: 'checkout_sessions',
  lineItems: 'line_items',
  paymentIntents: 'payment_intents',
  charges: 'charges',
  refunds: 'refunds',
  events: 'events',
  deliveries: 'webhook_deliveries',
  idempotencyKeys: 'idempotency_keys',
} as const;

/** Schema-qualified table names. */
const T = Object.fromEntries(Object.entries(N).map(([k, v]) => [k, `${S}.${v}`])) as { [K in keyof typeof N]: string };

function seq(t: Knex.CreateTableBuilder): void {
  t.specificType('seq', 'bigint GENERATED ALWAYS AS IDENTITY').notNullable().unique();
}

export async function up(knex: Knex): Promise<void> {
  await knex.schema.withSchema(S).createTable(N.customers, (t) => {
    t.text('id').primary();
    seq(t);
    t.timestamp('created', { useTz: true }).notNullable();
    t.text('email');
    t.text('name');
    t.text('description');
    t.text('phone');
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.index(['email']);
  });

  await knex.schema.withSchema(S).createTable(N.paymentIntents, (t) => {
    t.text('id').primary();
    seq(t);
    t.timestamp('created', { useTz: true }).notNullable();
    t.bigInteger('amount').notNullable();
    t.text('currency').notNullable();
    t.text('status').notNullable();
    t.text('client_secret').notNullable();
    t.text('customer_id').references('id').inTable(T.customers);
    t.text('description');
    t.text('receipt_email');
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.text('payment_method_id');
    t.text('latest_charge_id'); // FK added below (charges reference payment intents too)
    t.bigInteger('amount_received').notNullable().defaultTo(0);
    t.jsonb('last_payment_error');
    t.jsonb('next_action');
    // Card details (brand, last4, expiry, names; never the full number) awaiting 3-D Secure.
    t.jsonb('pending_card');
    t.timestamp('canceled_at', { useTz: true });
    t.text('cancellation_reason');
  });
  await knex.raw(`
    ALTER TABLE ${T.paymentIntents}
      ADD CONSTRAINT ${N.paymentIntents}_amount_positive CHECK (amount > 0),
      ADD CONSTRAINT ${N.paymentIntents}_received_range CHECK (amount_received >= 0 AND amount_received <= amount),
      ADD CONSTRAINT ${N.paymentIntents}_status_check CHECK (status IN (
        'requires_payment_method', 'requires_confirmation', 'requires_action', 'processing',
        'requires_capture', 'canceled', 'succeeded')),
      ADD CONSTRAINT ${N.paymentIntents}_succeeded_paid CHECK (
        status <> 'succeeded' OR (amount_received = amount AND latest_charge_id IS NOT NULL))`);

  await knex.schema.withSchema(S).createTable(N.charges, (t) => {
    t.text('id').primary();
    seq(t);
    t.timestamp('created', { useTz: true }).notNullable();
    t.text('payment_intent_id').notNullable().references('id').inTable(T.paymentIntents);
    t.bigInteger('amount').notNullable();
    t.bigInteger('amount_refunded').notNullable().defaultTo(0);
    t.text('currency').notNullable();
    t.text('status').notNullable();
    t.text('customer_id').references('id').inTable(T.customers);
    t.text('description');
    t.text('receipt_email');
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.text('payment_method_id').notNullable();
    t.jsonb('card').notNullable();
    t.jsonb('billing_details').notNullable();
    t.text('failure_code');
    t.text('failure_message');
    t.jsonb('outcome').notNullable();
    t.text('balance_transaction_id');
    t.index(['payment_intent_id']);
  });
  await knex.raw(`
    ALTER TABLE ${T.charges}
      ADD CONSTRAINT ${N.charges}_amount_positive CHECK (amount > 0),
      ADD CONSTRAINT ${N.charges}_refunded_range CHECK (amount_refunded >= 0 AND amount_refunded <= amount),
      ADD CONSTRAINT ${N.charges}_status_check CHECK (status IN ('succeeded', 'pending', 'failed')),
      ADD CONSTRAINT ${N.charges}_refund_only_succeeded CHECK (status = 'succeeded' OR amount_refunded = 0)`);
  await knex.raw(`
    ALTER TABLE ${T.paymentIntents}
      ADD CONSTRAINT ${N.paymentIntents}_latest_charge_fk FOREIGN KEY (latest_charge_id) REFERENCES ${T.charges} (id)`);

  await knex.schema.withSchema(S).createTable(N.sessions, (t) => {
    t.text('id').primary();
    seq(t);
    t.timestamp('created', { useTz: true }).notNullable();
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.text('status').notNullable();
    t.text('payment_status').notNullable();
    t.text('mode').notNullable();
    t.text('currency').notNullable();
    t.bigInteger('amount_subtotal').notNullable();
    t.bigInteger('amount_total').notNullable();
    t.text('success_url');
    t.text('cancel_url');
    t.text('client_reference_id');
    t.text('customer_id').references('id').inTable(T.customers);
    t.text('customer_email');
    t.jsonb('customer_details');
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.jsonb('payment_intent_data').notNullable().defaultTo('{}');
    t.text('payment_intent_id').unique().references('id').inTable(T.paymentIntents);
    t.timestamp('completed_at', { useTz: true });
    t.timestamp('expired_at', { useTz: true });
    t.index(['customer_id']);
  });
  await knex.raw(`
    ALTER TABLE ${T.sessions}
      ADD CONSTRAINT ${N.sessions}_status_check CHECK (status IN ('open', 'complete', 'expired')),
      ADD CONSTRAINT ${N.sessions}_payment_status_check CHECK (payment_status IN ('paid', 'unpaid', 'no_payment_required')),
      ADD CONSTRAINT ${N.sessions}_mode_check CHECK (mode IN ('payment')),
      ADD CONSTRAINT ${N.sessions}_amounts CHECK (amount_subtotal >= 0 AND amount_total >= 0),
      ADD CONSTRAINT ${N.sessions}_complete_is_paid CHECK (
        status <> 'complete' OR (payment_status = 'paid' AND payment_intent_id IS NOT NULL AND completed_at IS NOT NULL))`);
  await knex.raw(`CREATE INDEX ${N.sessions}_open_expiry ON ${T.sessions} (expires_at) WHERE status = 'open'`);

  await knex.schema.withSchema(S).createTable(N.lineItems, (t) => {
    t.text('id').primary();
    seq(t);
    t.text('session_id').notNullable().references('id').inTable(T.sessions).onDelete('CASCADE');
    t.integer('position').notNullable();
    t.timestamp('created', { useTz: true }).notNullable();
    t.text('price_id').notNullable();
    t.text('product_id').notNullable();
    t.text('product_name').notNullable();
    t.text('product_description');
    t.jsonb('product_metadata').notNullable().defaultTo('{}');
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.text('currency').notNullable();
    t.bigInteger('unit_amount').notNullable();
    t.bigInteger('quantity').notNullable();
    t.bigInteger('amount_total').notNullable();
    t.unique(['session_id', 'position']);
  });
  await knex.raw(`
    ALTER TABLE ${T.lineItems}
      ADD CONSTRAINT ${N.lineItems}_amounts CHECK (unit_amount >= 0 AND quantity > 0 AND amount_total = unit_amount * quantity)`);

  await knex.schema.withSchema(S).createTable(N.refunds, (t) => {
    t.text('id').primary();
    seq(t);
    t.timestamp('created', { useTz: true }).notNullable();
    t.text('charge_id').notNullable().references('id').inTable(T.charges);
    t.text('payment_intent_id').references('id').inTable(T.paymentIntents);
    t.bigInteger('amount').notNullable();
    t.text('currency').notNullable();
    t.text('reason');
    t.text('status').notNullable();
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.text('balance_transaction_id');
    t.index(['charge_id']);
    t.index(['payment_intent_id']);
  });
  await knex.raw(`
    ALTER TABLE ${T.refunds}
      ADD CONSTRAINT ${N.refunds}_amount_positive CHECK (amount > 0),
      ADD CONSTRAINT ${N.refunds}_reason_check CHECK (reason IS NULL OR reason IN ('duplicate', 'fraudulent', 'requested_by_customer')),
      ADD CONSTRAINT ${N.refunds}_status_check CHECK (status IN ('pending', 'requires_action', 'succeeded', 'failed', 'canceled'))`);

  await knex.schema.withSchema(S).createTable(N.events, (t) => {
    t.text('id').primary();
    seq(t);
    t.timestamp('created', { useTz: true }).notNullable();
    t.text('type').notNullable();
    t.text('api_version').notNullable();
    // {object, previous_attributes?}: the snapshot taken when the event happened.
    t.jsonb('data').notNullable();
    t.text('request_id');
    t.text('idempotency_key');
    t.index(['type', 'seq']);
  });

  await knex.schema.withSchema(S).createTable(N.deliveries, (t) => {
    t.bigIncrements('id').primary();
    t.text('event_id').notNullable().references('id').inTable(T.events).onDelete('CASCADE');
    t.text('endpoint_url').notNullable();
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true }).notNullable();
    t.timestamp('last_attempt_at', { useTz: true });
    t.integer('last_response_status');
    t.text('last_error');
    t.timestamp('delivered_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['event_id', 'endpoint_url']);
  });
  await knex.raw(`
    ALTER TABLE ${T.deliveries}
      ADD CONSTRAINT ${N.deliveries}_status_check CHECK (status IN ('pending', 'delivered', 'failed')),
      ADD CONSTRAINT ${N.deliveries}_attempts_nonnegative CHECK (attempts >= 0),
      ADD CONSTRAINT ${N.deliveries}_delivered_at CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))`);
  await knex.raw(`CREATE INDEX ${N.deliveries}_due ON ${T.deliveries} (next_attempt_at, id) WHERE status = 'pending'`);

  await knex.schema.withSchema(S).createTable(N.idempotencyKeys, (t) => {
    t.text('key').primary();
    t.text('method').notNullable();
    t.text('path').notNullable();
    t.text('params_hash').notNullable();
    t.text('request_id').notNullable();
    t.integer('status_code');
    t.jsonb('response');
    t.timestamp('created_at', { useTz: true }).notNullable();
    t.index(['created_at']);
  });
  await knex.raw(`
    ALTER TABLE ${T.idempotencyKeys}
      ADD CONSTRAINT ${N.idempotencyKeys}_key_length CHECK (length(key) BETWEEN 1 AND 255)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.withSchema(S).dropTable(N.idempotencyKeys);
  await knex.schema.withSchema(S).dropTable(N.deliveries);
  await knex.schema.withSchema(S).dropTable(N.events);
  await knex.schema.withSchema(S).dropTable(N.refunds);
  await knex.schema.withSchema(S).dropTable(N.lineItems);
  await knex.schema.withSchema(S).dropTable(N.sessions);
  await knex.raw(`ALTER TABLE ${T.paymentIntents} DROP CONSTRAINT ${N.paymentIntents}_latest_charge_fk`);
  await knex.schema.withSchema(S).dropTable(N.charges);
  await knex.schema.withSchema(S).dropTable(N.paymentIntents);
  await knex.schema.withSchema(S).dropTable(N.customers);
}
