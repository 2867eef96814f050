import type { Knex } from 'knex';

/**
 * The double-entry credit ledger (see DESIGN.md, "The ledger"). Amounts are integer millicredits.
 * The constraints below carry the invariants: positive amounts, no negative remainders or holds,
 * a hold is posted at most once and never above what it held, transfers are append-only.
 */
const SYSTEM_ACCOUNTS = ['sales', 'promotions', 'subscriptions', 'adjustments', 'usage', 'refunds', 'expired'];

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('accounts', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('code').unique();
    t.uuid('user_id').unique().references('id').inTable('users').onDelete('RESTRICT');
    // Running totals, kept by the transaction that writes each transfer (user accounts only:
    // a system account's totals would be one hot row shared by every user, so they are derived).
    t.bigInteger('credits_posted').notNullable().defaultTo(0);
    t.bigInteger('debits_posted').notNullable().defaultTo(0);
    t.bigInteger('debits_pending').notNullable().defaultTo(0);
    t.bigInteger('debt').notNullable().defaultTo(0);
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE accounts
      ADD CONSTRAINT accounts_owner CHECK ((code IS NULL) <> (user_id IS NULL)),
      ADD CONSTRAINT accounts_totals_nonnegative CHECK (credits_posted >= 0 AND debits_posted >= 0 AND debits_pending >= 0 AND debt >= 0)`);

  await knex.schema.createTable('transfers', (t) => {
    t.text('id').primary(); // caller-chosen: doubles as the idempotency key
    t.uuid('debit_account_id').notNullable().references('id').inTable('accounts');
    t.uuid('credit_account_id').notNullable().references('id').inTable('accounts');
    t.bigInteger('amount').notNullable();
    t.text('kind').notNullable();
    t.text('reason');
    t.text('actor').notNullable();
    t.text('reference_type');
    t.text('reference_id');
    t.text('hold_id');
    t.bigInteger('debit_balance_after');
    t.bigInteger('credit_balance_after');
    // Millisecond precision so keyset cursors round-trip through JS Dates exactly.
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.index(['debit_account_id', 'created_at']);
    t.index(['credit_account_id', 'created_at']);
    t.index(['reference_type', 'reference_id']);
  });
  await knex.raw(`
    ALTER TABLE transfers
      ADD CONSTRAINT transfers_amount_positive CHECK (amount > 0),
      ADD CONSTRAINT transfers_distinct_accounts CHECK (debit_account_id <> credit_account_id),
      ADD CONSTRAINT transfers_id_length CHECK (length(id) BETWEEN 1 AND 255),
      ADD CONSTRAINT transfers_kind_check CHECK (kind IN (
        'purchase', 'signup_bonus', 'bonus', 'subscription_grant', 'adjustment',
        'usage', 'refund_clawback', 'expiry'))`);
  await knex.raw(`CREATE UNIQUE INDEX transfers_one_per_hold ON transfers (hold_id) WHERE hold_id IS NOT NULL`);

  await knex.schema.createTable('lots', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('account_id').notNullable().references('id').inTable('accounts');
    t.text('transfer_id').notNullable().unique().references('id').inTable('transfers');
    t.text('source').notNullable();
    t.bigInteger('amount').notNullable();
    t.bigInteger('remaining').notNullable();
    t.bigInteger('held').notNullable().defaultTo(0);
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE lots
      ADD CONSTRAINT lots_amount_positive CHECK (amount > 0),
      ADD CONSTRAINT lots_remaining_range CHECK (remaining >= 0 AND remaining <= amount),
      ADD CONSTRAINT lots_held_range CHECK (held >= 0 AND held <= remaining)`);
  await knex.raw(`CREATE INDEX lots_open ON lots (account_id, expires_at, created_at) WHERE remaining > 0`);
  await knex.raw(`CREATE INDEX lots_expiring ON lots (expires_at) WHERE remaining > held AND expires_at IS NOT NULL`);

  await knex.schema.createTable('holds', (t) => {
    t.text('id').primary(); // caller-chosen: doubles as the idempotency key
    t.uuid('account_id').notNullable().references('id').inTable('accounts');
    t.bigInteger('amount').notNullable();
    t.text('status').notNullable().defaultTo('active');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.text('reason');
    t.text('actor').notNullable();
    t.text('reference_type');
    t.text('reference_id');
    t.bigInteger('posted_amount');
    t.text('transfer_id').references('id').inTable('transfers');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('resolved_at', { useTz: true });
  });
  await knex.raw(`
    ALTER TABLE holds
      ADD CONSTRAINT holds_amount_positive CHECK (amount > 0),
      ADD CONSTRAINT holds_status_check CHECK (status IN ('active', 'posted', 'voided', 'expired')),
      ADD CONSTRAINT holds_posted_amount CHECK (
        (status = 'posted') = (posted_amount IS NOT NULL) AND (posted_amount IS NULL OR posted_amount BETWEEN 0 AND amount)),
      ADD CONSTRAINT holds_resolved CHECK ((status = 'active') = (resolved_at IS NULL))`);
  await knex.raw(`CREATE INDEX holds_active_by_account ON holds (account_id) WHERE status = 'active'`);
  await knex.raw(`CREATE INDEX holds_active_by_expiry ON holds (expires_at) WHERE status = 'active'`);
  await knex.raw(`CREATE INDEX holds_reference ON holds (reference_type, reference_id)`);
  await knex.raw(`ALTER TABLE transfers ADD CONSTRAINT transfers_hold_fk FOREIGN KEY (hold_id) REFERENCES holds (id)`);

  await knex.schema.createTable('hold_lots', (t) => {
    t.text('hold_id').notNullable().references('id').inTable('holds');
    t.uuid('lot_id').notNullable().references('id').inTable('lots');
    t.bigInteger('amount').notNullable();
    t.primary(['hold_id', 'lot_id']);
  });
  await knex.raw(`ALTER TABLE hold_lots ADD CONSTRAINT hold_lots_amount_positive CHECK (amount > 0)`);

  // Which lot paid for which transfer: spends, expiries, clawbacks and debt repayments.
  await knex.schema.createTable('transfer_allocations', (t) => {
    t.bigIncrements('id');
    t.text('transfer_id').notNullable().references('id').inTable('transfers');
    t.uuid('lot_id').notNullable().references('id').inTable('lots');
    t.bigInteger('amount').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['transfer_id']);
    t.index(['lot_id']);
  });
  await knex.raw(`ALTER TABLE transfer_allocations ADD CONSTRAINT transfer_allocations_amount_positive CHECK (amount > 0)`);

  // Append-only: the database refuses to change or delete history.
  await knex.raw(`
    CREATE FUNCTION ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'P0001';
    END $$`);
  for (const table of ['transfers', 'transfer_allocations']) {
    await knex.raw(`CREATE TRIGGER ${table}_append_only BEFORE UPDATE OR DELETE ON ${table}
      FOR EACH ROW EXECUTE FUNCTION ledger_append_only()`);
  }

  await knex('accounts').insert(SYSTEM_ACCOUNTS.map((code) => ({ code })));
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('transfer_allocations');
  await knex.schema.dropTable('hold_lots');
  await knex.raw('ALTER TABLE transfers DROP CONSTRAINT transfers_hold_fk');
  await knex.schema.dropTable('holds');
  await knex.schema.dropTable('lots');
  await knex.schema.dropTable('transfers');
  await knex.schema.dropTable('accounts');
  await knex.raw('DROP FUNCTION ledger_append_only()');
}
