import type { Knex } from 'knex';

/**
 * Auto-recharge (issue 14): a saved card, a threshold, the pack to buy, at most N recharges a day
 * and a monthly ceiling in money; and each recharge attempt.
 *
 * - `auto_recharges.payment_id` is an ordinary `payments` row, so credits arrive as a purchase lot
 *   exactly once (transfer id `purchase:<payment id>`) and a refund claws back like any purchase.
 * - At most one recharge in flight per user: a partial unique index on `(user_id) WHERE status =
 *   'pending'`, so concurrent spends crossing the threshold start exactly one.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('auto_recharge_settings', (t) => {
    t.uuid('user_id').primary().references('id').inTable('users').onDelete('CASCADE');
    t.boolean('enabled').notNullable().defaultTo(false);
    t.text('payment_method_id');
    t.text('card_brand');
    t.text('card_last4');
    t.bigInteger('threshold_millicredits').notNullable();
    t.text('package_id').notNullable().references('id').inTable('credit_packages');
    t.integer('max_per_day').notNullable().defaultTo(3);
    t.bigInteger('monthly_ceiling_cents').notNullable();
    t.integer('consecutive_failures').notNullable().defaultTo(0);
    t.text('disabled_reason');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE auto_recharge_settings ADD CONSTRAINT auto_recharge_settings_values CHECK (
    threshold_millicredits > 0 AND max_per_day BETWEEN 1 AND 100 AND monthly_ceiling_cents > 0 AND consecutive_failures >= 0)`);

  await knex.schema.createTable('auto_recharges', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.uuid('payment_id').notNullable().unique().references('id').inTable('payments');
    t.text('status').notNullable().defaultTo('pending');
    t.bigInteger('amount_cents').notNullable();
    t.text('currency').notNullable();
    t.text('payment_intent_id').unique();
    t.text('failure_code');
    t.text('failure_message');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('completed_at', { useTz: true });
    t.index(['user_id', 'created_at']);
  });
  await knex.raw(`ALTER TABLE auto_recharges ADD CONSTRAINT auto_recharges_status CHECK (status IN ('pending', 'succeeded', 'failed', 'requires_action'))`);
  await knex.raw(`CREATE UNIQUE INDEX auto_recharges_one_in_flight ON auto_recharges (user_id) WHERE status = 'pending'`);

  // Guardrail notices: once per user, kind and period.
  await knex.schema.createTable('auto_recharge_notices', (t) => {
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.text('period').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['user_id', 'kind', 'period']);
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('auto_recharge_notices');
  await knex.schema.dropTable('auto_recharges');
  await knex.schema.dropTable('auto_recharge_settings');
}
