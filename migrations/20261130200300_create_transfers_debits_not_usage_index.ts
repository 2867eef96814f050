import type { Knex } from 'knex';

/**
 * Statements (issue 18): the few transfers out of an account that are not usage (expiry, refund
 * clawback, negative adjustment) by time, covering amount and kind. With the usage index of
 * 20261130200000 (covering the amount), a month's sums per kind are index-only scans instead of a
 * heap visit per job (measured in `npm run bench`, BENCH_ONLY=insight).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`CREATE INDEX transfers_debits_not_usage ON transfers (debit_account_id, created_at) INCLUDE (amount, kind) WHERE kind <> 'usage'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP INDEX transfers_debits_not_usage');
}
