import type { Knex } from 'knex';

/**
 * Subscriptions: plans (reference data, seeded like packs), the Stripe subscriptions of users, their
 * invoices, and one row per credited period. `subscription_periods` is the exactly-once key of
 * subscription credits: UNIQUE (subscription_id, period_start), inserted in the transaction that
 * grants the period's lot, whichever of webhook, success page or admin gets there first.
 * Credits are millicredits (bigint), money integer minor units, times timestamptz.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('plans', (t) => {
    t.text('id').primary();
    t.text('name').notNullable();
    t.bigInteger('credits_millicredits').notNullable();
    t.text('interval').notNullable();
    t.bigInteger('amount_cents').notNullable();
    t.text('currency').notNullable();
    t.bigInteger('rollover_cap_millicredits').notNullable().defaultTo(0);
    t.integer('rollover_periods').notNullable().defaultTo(1);
    t.integer('sort_order').notNullable().defaultTo(0);
    t.boolean('active').notNullable().defaultTo(true);
  });
  await knex.raw(`ALTER TABLE plans
    ADD CONSTRAINT plans_interval_check CHECK (interval IN ('month', 'year')),
    ADD CONSTRAINT plans_amounts CHECK (credits_millicredits > 0 AND amount_cents > 0 AND currency ~ '^[a-z]{3}$'
      AND rollover_cap_millicredits >= 0 AND rollover_periods >= 1)`);

  await knex.schema.createTable('subscriptions', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('id').inTable('users');
    t.text('stripe_subscription_id').notNullable().unique();
    t.text('stripe_customer_id').notNullable();
    // The plan Stripe bills now (after a downgrade: from the next renewal).
    t.text('plan_id').notNullable().references('id').inTable('plans');
    t.text('status').notNullable();
    t.timestamp('current_period_start', { useTz: true }).notNullable();
    t.timestamp('current_period_end', { useTz: true }).notNullable();
    t.boolean('cancel_at_period_end').notNullable().defaultTo(false);
    t.timestamp('canceled_at', { useTz: true });
    t.timestamp('ended_at', { useTz: true });
    t.text('test_clock_id');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['user_id']);
  });
  await knex.raw(`ALTER TABLE subscriptions
    ADD CONSTRAINT subscriptions_status_check CHECK (status IN
      ('incomplete', 'incomplete_expired', 'trialing', 'active', 'past_due', 'canceled', 'unpaid', 'paused')),
    ADD CONSTRAINT subscriptions_period CHECK (current_period_end > current_period_start)`);

  await knex.schema.createTable('subscription_invoices', (t) => {
    t.text('stripe_invoice_id').primary();
    t.uuid('subscription_id').notNullable().references('id').inTable('subscriptions');
    t.text('number');
    t.text('status').notNullable();
    t.text('billing_reason');
    t.bigInteger('amount_due').notNullable();
    t.bigInteger('amount_paid').notNullable();
    t.text('currency').notNullable();
    t.timestamp('period_start', { useTz: true }).notNullable();
    t.timestamp('period_end', { useTz: true }).notNullable();
    t.integer('attempt_count').notNullable().defaultTo(0);
    t.timestamp('next_payment_attempt', { useTz: true });
    t.text('hosted_invoice_url');
    t.timestamp('created', { useTz: true }).notNullable();
    t.timestamp('paid_at', { useTz: true });
    // An upgrade's proration invoice: the credit difference granted once it is paid.
    t.bigInteger('proration_millicredits');
    t.text('proration_transfer_id').unique();
    t.index(['subscription_id', 'created']);
  });
  await knex.raw(`ALTER TABLE subscription_invoices
    ADD CONSTRAINT subscription_invoices_amounts CHECK (amount_due >= 0 AND amount_paid >= 0 AND attempt_count >= 0),
    ADD CONSTRAINT subscription_invoices_proration CHECK ((proration_millicredits IS NULL) = (proration_transfer_id IS NULL)
      AND (proration_millicredits IS NULL OR proration_millicredits > 0))`);

  await knex.schema.createTable('subscription_periods', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('subscription_id').notNullable().references('id').inTable('subscriptions');
    t.timestamp('period_start', { useTz: true }).notNullable();
    t.timestamp('period_end', { useTz: true }).notNullable();
    // The plan the period is credited for (an upgrade's proration moves it to the new plan).
    t.text('plan_id').notNullable().references('id').inTable('plans');
    t.bigInteger('granted_millicredits').notNullable();
    t.text('grant_transfer_id').notNullable().unique();
    t.bigInteger('rollover_millicredits').notNullable().defaultTo(0);
    t.text('rollover_transfer_id').unique();
    t.timestamp('rollover_expires_at', { useTz: true });
    // invoice (paid invoice), admin (granted by hand), schedule (a later month of a yearly plan).
    t.text('source').notNullable();
    t.text('stripe_invoice_id');
    t.text('granted_by');
    t.text('reason');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.unique(['subscription_id', 'period_start']);
  });
  await knex.raw(`ALTER TABLE subscription_periods
    ADD CONSTRAINT subscription_periods_period CHECK (period_end > period_start),
    ADD CONSTRAINT subscription_periods_amounts CHECK (granted_millicredits > 0 AND rollover_millicredits >= 0),
    ADD CONSTRAINT subscription_periods_rollover CHECK ((rollover_millicredits > 0) = (rollover_transfer_id IS NOT NULL)),
    ADD CONSTRAINT subscription_periods_source CHECK (source IN ('invoice', 'admin', 'schedule'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('subscription_periods');
  await knex.schema.dropTable('subscription_invoices');
  await knex.schema.dropTable('subscriptions');
  await knex.schema.dropTable('plans');
}
