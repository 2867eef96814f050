import type { Knex } from 'knex';

/**
 * Credit packs (reference data), payments (one per Checkout Session), refunds, Stripe customers,
 * and the webhook events already processed (Stripe event ids, unique: a redelivery is a no-op).
 * Money is integer minor units (`amount_cents`) with an ISO currency code, as Stripe does.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('credit_packages', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.bigInteger('credits_millicredits').notNullable();
    t.bigInteger('bonus_millicredits').notNullable().defaultTo(0);
    t.bigInteger('amount_cents').notNullable();
    t.text('currency').notNullable();
    t.integer('sort_order').notNullable().defaultTo(0);
    t.boolean('active').notNullable().defaultTo(true);
  });
  await knex.raw(`ALTER TABLE credit_packages ADD CONSTRAINT credit_packages_amounts
    CHECK (credits_millicredits > 0 AND bonus_millicredits >= 0 AND amount_cents > 0 AND currency ~ '^[a-z]{3}$')`);

  await knex.schema.createTable('stripe_customers', (t) => {
    t.uuid('user_id').primary().references('id').inTable('users');
    t.text('customer_id').notNullable().unique();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.createTable('payments', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('id').inTable('users');
    t.text('package_id').notNullable().references('id').inTable('credit_packages');
    t.text('status').notNullable().defaultTo('pending');
    // What was sold, copied from the pack at checkout so later price changes don't rewrite history.
    t.bigInteger('credits_millicredits').notNullable();
    t.bigInteger('bonus_millicredits').notNullable();
    t.bigInteger('amount_cents').notNullable();
    t.text('currency').notNullable();
    t.text('checkout_session_id').unique();
    t.text('checkout_url');
    t.text('payment_intent_id').unique();
    t.bigInteger('refunded_cents').notNullable().defaultTo(0);
    t.text('idempotency_key');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('paid_at', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['user_id', 'idempotency_key']);
    t.index(['user_id', 'created_at']);
  });
  await knex.raw(`ALTER TABLE payments
    ADD CONSTRAINT payments_status_check CHECK (status IN ('pending', 'paid', 'expired', 'refunded', 'partially_refunded')),
    ADD CONSTRAINT payments_amounts CHECK (amount_cents > 0 AND refunded_cents >= 0 AND refunded_cents <= amount_cents),
    ADD CONSTRAINT payments_paid_at CHECK ((status IN ('paid', 'refunded', 'partially_refunded')) = (paid_at IS NOT NULL))`);

  await knex.schema.createTable('payment_refunds', (t) => {
    t.text('id').primary(); // Stripe refund id (re_…)
    t.uuid('payment_id').notNullable().references('id').inTable('payments');
    t.bigInteger('amount_cents').notNullable();
    t.text('status').notNullable();
    t.text('reason');
    t.text('requested_by');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['payment_id']);
  });
  await knex.raw(`ALTER TABLE payment_refunds ADD CONSTRAINT payment_refunds_amount CHECK (amount_cents > 0)`);

  await knex.schema.createTable('stripe_webhook_events', (t) => {
    t.text('id').primary(); // Stripe event id (evt_…)
    t.text('type').notNullable();
    t.timestamp('stripe_created_at', { useTz: true }).notNullable();
    t.timestamp('processed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('outcome').notNullable();
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('stripe_webhook_events');
  await knex.schema.dropTable('payment_refunds');
  await knex.schema.dropTable('payments');
  await knex.schema.dropTable('stripe_customers');
  await knex.schema.dropTable('credit_packages');
}
