import type { Knex } from 'knex';

/**
 * Stripe Billing in the emulator: products, recurring prices, subscriptions, invoices, billing
 * portal sessions and test clocks. Each object is stored as the Stripe JSON it is served as
 * (`data`), with the columns lists and the clock need beside it; customers gain their test clock
 * and default card; Checkout Sessions gain `mode: subscription`.
 */
const S = 'stripe_emulator';
const T = `${S}.billing_objects`;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.withSchema(S).createTable('billing_objects', (t) => {
    t.text('id').primary();
    t.specificType('seq', 'bigint GENERATED ALWAYS AS IDENTITY').notNullable().unique();
    t.text('object').notNullable();
    t.timestamp('created', { useTz: true }).notNullable();
    t.text('customer_id');
    t.text('subscription_id');
    t.text('test_clock_id');
    t.text('lookup_key');
    t.text('status');
    t.jsonb('data').notNullable();
    t.index(['object', 'customer_id']);
    t.index(['object', 'subscription_id']);
    t.index(['object', 'test_clock_id']);
  });
  await knex.raw(`
    ALTER TABLE ${T}
      ADD CONSTRAINT billing_objects_object_check CHECK (object IN (
        'product', 'price', 'subscription', 'invoice', 'billing_portal.session', 'test_helpers.test_clock'))`);
  await knex.raw(`CREATE UNIQUE INDEX billing_objects_price_lookup_key ON ${T} (lookup_key) WHERE object = 'price' AND lookup_key IS NOT NULL`);

  await knex.schema.withSchema(S).alterTable('customers', (t) => {
    t.text('test_clock_id');
    // {id, card: {brand, last4, exp_month, exp_year, ...}, number_behaviour}: the saved card.
    t.jsonb('default_payment_method');
  });
  await knex.schema.withSchema(S).alterTable('checkout_sessions', (t) => {
    t.text('subscription_id');
    t.text('invoice_id');
    t.text('price_id');
  });
  await knex.raw(`
    ALTER TABLE ${S}.checkout_sessions
      DROP CONSTRAINT checkout_sessions_mode_check,
      ADD CONSTRAINT checkout_sessions_mode_check CHECK (mode IN ('payment', 'subscription')),
      DROP CONSTRAINT checkout_sessions_complete_is_paid,
      ADD CONSTRAINT checkout_sessions_complete_is_paid CHECK (
        status <> 'complete' OR (payment_status = 'paid' AND completed_at IS NOT NULL
          AND (payment_intent_id IS NOT NULL OR (mode = 'subscription' AND subscription_id IS NOT NULL))))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex(`${S}.checkout_sessions`).where({ mode: 'subscription' }).delete();
  await knex.raw(`
    ALTER TABLE ${S}.checkout_sessions
      DROP CONSTRAINT checkout_sessions_mode_check,
      ADD CONSTRAINT checkout_sessions_mode_check CHECK (mode IN ('payment')),
      DROP CONSTRAINT checkout_sessions_complete_is_paid,
      ADD CONSTRAINT checkout_sessions_complete_is_paid CHECK (
        status <> 'complete' OR (payment_status = 'paid' AND payment_intent_id IS NOT NULL AND completed_at IS NOT NULL))`);
  await knex.schema.withSchema(S).alterTable('checkout_sessions', (t) => {
    t.dropColumn('subscription_id');
    t.dropColumn('invoice_id');
    t.dropColumn('price_id');
  });
  await knex.schema.withSchema(S).alterTable('customers', (t) => {
    t.dropColumn('test_clock_id');
    t.dropColumn('default_payment_method');
  });
  await knex.schema.withSchema(S).dropTable('billing_objects');
}
