import type { Knex } from 'knex';

/**
 * Saving a card without paying (issue 14): SetupIntents (https://docs.stripe.com/api/setup_intents)
 * and Checkout Sessions in `mode: setup`, which collect a card, attach it to the customer as a
 * PaymentMethod and complete with `setup_intent` set and `payment_status: no_payment_required`.
 * A setup session has no line items; its amounts are stored as 0 and shown as null.
 */
const S = 'stripe_emulator';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.withSchema(S).createTable('setup_intents', (t) => {
    t.text('id').primary();
    t.specificType('seq', 'bigint GENERATED ALWAYS AS IDENTITY').notNullable().unique();
    t.timestamp('created', { useTz: true }).notNullable();
    t.text('status').notNullable();
    t.text('usage').notNullable().defaultTo('off_session');
    t.text('customer_id').references('id').inTable(`${S}.customers`);
    t.text('payment_method_id').references('id').inTable(`${S}.payment_methods`);
    t.text('client_secret').notNullable();
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.jsonb('last_setup_error');
  });
  await knex.raw(`ALTER TABLE ${S}.setup_intents ADD CONSTRAINT setup_intents_status CHECK (status IN ('requires_payment_method', 'succeeded', 'canceled'))`);
  await knex.schema.withSchema(S).alterTable('checkout_sessions', (t) => {
    t.text('setup_intent_id');
  });
  await knex.raw(`
    ALTER TABLE ${S}.checkout_sessions
      DROP CONSTRAINT checkout_sessions_mode_check,
      ADD CONSTRAINT checkout_sessions_mode_check CHECK (mode IN ('payment', 'subscription', 'setup')),
      DROP CONSTRAINT checkout_sessions_complete_is_paid,
      ADD CONSTRAINT checkout_sessions_complete_is_paid CHECK (
        status <> 'complete' OR (completed_at IS NOT NULL AND (
          (mode = 'setup' AND payment_status = 'no_payment_required' AND setup_intent_id IS NOT NULL)
          OR (payment_status = 'paid' AND (payment_intent_id IS NOT NULL OR (mode = 'subscription' AND subscription_id IS NOT NULL))))))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex(`${S}.checkout_sessions`).where({ mode: 'setup' }).delete();
  await knex.raw(`
    ALTER TABLE ${S}.checkout_sessions
      DROP CONSTRAINT checkout_sessions_mode_check,
      ADD CONSTRAINT checkout_sessions_mode_check CHECK (mode IN ('payment', 'subscription')),
      DROP CONSTRAINT checkout_sessions_complete_is_paid,
      ADD CONSTRAINT checkout_sessions_complete_is_paid CHECK (
        status <> 'complete' OR (payment_status = 'paid' AND completed_at IS NOT NULL
          AND (payment_intent_id IS NOT NULL OR (mode = 'subscription' AND subscription_id IS NOT NULL))))`);
  await knex.schema.withSchema(S).alterTable('checkout_sessions', (t) => {
    t.dropColumn('setup_intent_id');
  });
  await knex.schema.withSchema(S).dropTable('setup_intents');
}
