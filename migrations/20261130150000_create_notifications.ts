import type { Knex } from 'knex';

/**
 * Tally talks back (issue 13): the email outbox, per-user notification settings, the in-app
 * notification centre, low-balance and expiry alerts, one-time auth tokens (password reset, email
 * verification), and the outbound webhook endpoints with their delivery outbox and attempt log.
 *
 * The outboxes are written in the transaction that causes a message, so a rollback sends nothing;
 * the senders claim rows with FOR UPDATE SKIP LOCKED and a lease (`lease_until`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.timestamp('email_verified_at', { useTz: true });
  });

  await knex.schema.createTable('email_outbox', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').references('id').inTable('users').onDelete('SET NULL');
    t.text('to_address').notNullable();
    t.text('type').notNullable();
    t.text('subject').notNullable();
    t.text('text_body').notNullable();
    t.text('html_body').notNullable();
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.timestamp('lease_until', { useTz: true });
    t.text('last_error');
    t.text('message_id');
    // One message per cause (e.g. `receipt:<payment>`): a replayed cause adds no second email.
    t.text('dedupe_key').unique();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.timestamp('sent_at', { useTz: true });
    t.index(['created_at']);
    t.index(['to_address', 'created_at']);
  });
  await knex.raw(`ALTER TABLE email_outbox
    ADD CONSTRAINT email_outbox_status CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'not_sent')),
    ADD CONSTRAINT email_outbox_sent_at CHECK ((status = 'sent') = (sent_at IS NOT NULL)),
    ADD CONSTRAINT email_outbox_attempts CHECK (attempts >= 0)`);
  await knex.raw(`CREATE INDEX email_outbox_due ON email_outbox (next_attempt_at) WHERE status = 'pending'`);

  await knex.schema.createTable('notification_settings', (t) => {
    t.uuid('user_id').primary().references('id').inTable('users').onDelete('CASCADE');
    t.boolean('receipts').notNullable().defaultTo(true);
    t.boolean('low_balance').notNullable().defaultTo(true);
    t.boolean('expiring_credits').notNullable().defaultTo(true);
    t.boolean('jobs').notNullable().defaultTo(false);
    t.bigInteger('low_balance_floor_millicredits');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE notification_settings ADD CONSTRAINT notification_settings_floor CHECK (low_balance_floor_millicredits > 0)`);

  await knex.schema.createTable('notifications', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('type').notNullable();
    t.text('title').notNullable();
    t.text('body').notNullable();
    t.text('link');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.timestamp('read_at', { useTz: true });
    t.index(['user_id', 'created_at']);
  });
  await knex.raw(`CREATE INDEX notifications_unread ON notifications (user_id) WHERE read_at IS NULL`);

  // Low balance: the reference balance (right after the last purchase or subscription grant) and,
  // per threshold, whether it is armed and how many times it has been re-armed (its generation).
  await knex.schema.createTable('low_balance_state', (t) => {
    t.uuid('user_id').primary().references('id').inTable('users').onDelete('CASCADE');
    t.bigInteger('baseline_millicredits');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.schema.createTable('low_balance_thresholds', (t) => {
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('threshold').notNullable();
    t.boolean('armed').notNullable().defaultTo(true);
    t.integer('generation').notNullable().defaultTo(0);
    t.primary(['user_id', 'threshold']);
  });

  // Alert history. A threshold fires at most once per arming generation and a lot gets one
  // expiry notice: unique keys, so even a bug in the callers cannot send a second one.
  await knex.schema.createTable('balance_alerts', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('kind').notNullable();
    t.text('threshold');
    t.integer('generation');
    t.bigInteger('threshold_millicredits');
    t.bigInteger('balance_millicredits');
    t.uuid('lot_id');
    t.bigInteger('lot_remaining_millicredits');
    t.timestamp('lot_expires_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.index(['user_id', 'created_at']);
  });
  await knex.raw(`ALTER TABLE balance_alerts ADD CONSTRAINT balance_alerts_kind CHECK (kind IN ('low_balance', 'credits_expiring'))`);
  await knex.raw(`CREATE UNIQUE INDEX balance_alerts_once_per_generation ON balance_alerts (user_id, threshold, generation) WHERE kind = 'low_balance'`);
  await knex.raw(`CREATE UNIQUE INDEX balance_alerts_once_per_lot ON balance_alerts (lot_id) WHERE kind = 'credits_expiring'`);

  // Ledger and task events noticed by the sweeper (expired lots and holds, finished tasks): one row
  // per (kind, reference), so each is announced once.
  await knex.schema.createTable('event_notices', (t) => {
    t.text('kind').notNullable();
    t.text('ref_id').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['kind', 'ref_id']);
  });

  await knex.schema.createTable('auth_tokens', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('purpose').notNullable();
    // SHA-256 of the token: the token itself exists only in the email.
    t.text('token_hash').notNullable().unique();
    t.text('email').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('used_at', { useTz: true });
    t.index(['user_id', 'purpose']);
  });
  await knex.raw(`ALTER TABLE auth_tokens ADD CONSTRAINT auth_tokens_purpose CHECK (purpose IN ('password_reset', 'email_verification'))`);

  await knex.schema.createTable('webhook_endpoints', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('url').notNullable();
    t.specificType('events', 'text[]').notNullable();
    t.text('description');
    // The signing secret (whsec_…): needed in clear to sign each delivery.
    t.text('secret').notNullable();
    t.text('status').notNullable().defaultTo('enabled');
    t.text('disabled_reason');
    t.timestamp('failing_since', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.index(['user_id']);
  });
  await knex.raw(`ALTER TABLE webhook_endpoints
    ADD CONSTRAINT webhook_endpoints_status CHECK (status IN ('enabled', 'disabled')),
    ADD CONSTRAINT webhook_endpoints_events CHECK (cardinality(events) > 0)`);

  await knex.schema.createTable('webhook_deliveries', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('endpoint_id').notNullable().references('id').inTable('webhook_endpoints').onDelete('CASCADE');
    // The message id (`webhook-id` header): the same on every retry, so receivers can deduplicate.
    t.text('message_id').notNullable();
    t.text('type').notNullable();
    t.jsonb('payload').notNullable();
    t.text('status').notNullable().defaultTo('pending');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.timestamp('lease_until', { useTz: true });
    t.integer('last_response_code');
    t.text('last_error');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.timestamp('completed_at', { useTz: true });
    t.unique(['endpoint_id', 'message_id']);
    t.index(['endpoint_id', 'created_at']);
  });
  await knex.raw(`ALTER TABLE webhook_deliveries ADD CONSTRAINT webhook_deliveries_status CHECK (status IN ('pending', 'delivering', 'succeeded', 'failed'))`);
  await knex.raw(`CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'delivering')`);

  await knex.schema.createTable('webhook_delivery_attempts', (t) => {
    t.bigIncrements('id');
    t.uuid('delivery_id').notNullable().references('id').inTable('webhook_deliveries').onDelete('CASCADE');
    t.timestamp('attempted_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.text('status').notNullable();
    t.integer('response_code');
    t.integer('duration_ms').notNullable();
    t.text('error');
    t.index(['delivery_id']);
  });
  await knex.raw(`ALTER TABLE webhook_delivery_attempts ADD CONSTRAINT webhook_delivery_attempts_status CHECK (status IN ('succeeded', 'failed'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('webhook_delivery_attempts');
  await knex.schema.dropTable('webhook_deliveries');
  await knex.schema.dropTable('webhook_endpoints');
  await knex.schema.dropTable('auth_tokens');
  await knex.schema.dropTable('event_notices');
  await knex.schema.dropTable('balance_alerts');
  await knex.schema.dropTable('low_balance_thresholds');
  await knex.schema.dropTable('low_balance_state');
  await knex.schema.dropTable('notifications');
  await knex.schema.dropTable('notification_settings');
  await knex.schema.dropTable('email_outbox');
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('email_verified_at');
  });
}
