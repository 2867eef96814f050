import type { Knex } from 'knex';

/**
 * Insight (issue 18): gapless receipt numbers and the indexes behind the usage dashboard and the
 * admin reports.
 *
 * - `receipt_counter` is one row holding the last number issued; `receipts` gives each paid payment
 *   its number. A number is taken by incrementing the counter in the same transaction that inserts
 *   the receipt row, so a rolled-back allocation gives its number back: no gaps, no duplicates
 *   (the counter row's lock serializes issuers). Paid payments that exist already are numbered in
 *   the order they were paid.
 * - `transfers_usage_by_account`: usage transfers of one account by time, covering the amount and
 *   the reference type (the operation), so usage series and stats are index-only scans however
 *   long the rest of the history.
 * - `transfers_expiry_by_time`: expiry transfers by time (breakage per month).
 * - `payments_paid_at`: paid payments by time (revenue by day/month).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('receipt_counter', (t) => {
    t.boolean('id').primary().defaultTo(true);
    t.bigInteger('last_number').notNullable().defaultTo(0);
  });
  await knex.raw(`ALTER TABLE receipt_counter ADD CONSTRAINT receipt_counter_one_row CHECK (id), ADD CONSTRAINT receipt_counter_nonnegative CHECK (last_number >= 0)`);
  await knex.schema.createTable('receipts', (t) => {
    t.uuid('payment_id').primary().references('id').inTable('payments');
    t.bigInteger('number').notNullable().unique();
    t.timestamp('issued_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('card_brand');
    t.text('card_last4');
  });
  await knex.raw(`ALTER TABLE receipts ADD CONSTRAINT receipts_number_positive CHECK (number > 0)`);
  await knex.raw(`
    INSERT INTO receipts (payment_id, number, issued_at)
    SELECT id, row_number() OVER (ORDER BY paid_at, id), paid_at FROM payments WHERE paid_at IS NOT NULL`);
  await knex.raw(`INSERT INTO receipt_counter (id, last_number) SELECT true, COALESCE(MAX(number), 0) FROM receipts`);

  await knex.raw(`CREATE INDEX transfers_usage_by_account ON transfers (debit_account_id, created_at) INCLUDE (amount, reference_type) WHERE kind = 'usage'`);
  await knex.raw(`CREATE INDEX transfers_expiry_by_time ON transfers (created_at) WHERE kind = 'expiry'`);
  await knex.raw(`CREATE INDEX payments_paid_at ON payments (paid_at) WHERE paid_at IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX payments_paid_at');
  await knex.raw('DROP INDEX transfers_expiry_by_time');
  await knex.raw('DROP INDEX transfers_usage_by_account');
  await knex.schema.dropTable('receipts');
  await knex.schema.dropTable('receipt_counter');
}
