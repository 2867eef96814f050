import type { Knex } from 'knex';

/**
 * A daily rollup of usage (issue 18, "Speed"): per account, UTC day and operation, the credits
 * spent and the number of usage transfers. It is kept in step by a trigger on `transfers`, so it
 * changes in the same transaction as the usage transfer that it counts (whichever ledger function
 * or batch wrote it) and can never disagree with the ledger after a commit or a rollback. The
 * account row is already locked by the ledger operation, so the upsert adds no contention between
 * users. Usage charts over whole days read it instead of every transfer: the year of a user with
 * 100,000 jobs is ≤ 365 × operations rows (measured in `npm run bench`, BENCH_ONLY=insight).
 *
 * The operation is the transfer's reference type (a task is OCR), as src/insight/usage-store.ts
 * names it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('usage_daily', (t) => {
    t.uuid('account_id').notNullable().references('id').inTable('accounts');
    t.date('day').notNullable();
    t.text('operation').notNullable();
    t.bigInteger('amount').notNullable();
    t.bigInteger('transfers').notNullable();
    t.primary(['account_id', 'day', 'operation']);
  });
  await knex.raw(`ALTER TABLE usage_daily ADD CONSTRAINT usage_daily_positive CHECK (amount > 0 AND transfers > 0)`);
  await knex.raw(`
    CREATE FUNCTION usage_daily_add() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      INSERT INTO usage_daily (account_id, day, operation, amount, transfers)
      VALUES (NEW.debit_account_id, (NEW.created_at AT TIME ZONE 'UTC')::date,
              CASE WHEN NEW.reference_type = 'task' THEN 'ocr' ELSE COALESCE(NEW.reference_type, 'other') END, NEW.amount, 1)
      ON CONFLICT (account_id, day, operation)
      DO UPDATE SET amount = usage_daily.amount + EXCLUDED.amount, transfers = usage_daily.transfers + 1;
      RETURN NULL;
    END $$`);
  await knex.raw(`CREATE TRIGGER transfers_usage_daily AFTER INSERT ON transfers FOR EACH ROW WHEN (NEW.kind = 'usage') EXECUTE FUNCTION usage_daily_add()`);
  await knex.raw(`
    INSERT INTO usage_daily (account_id, day, operation, amount, transfers)
    SELECT debit_account_id, (created_at AT TIME ZONE 'UTC')::date,
           CASE WHEN reference_type = 'task' THEN 'ocr' ELSE COALESCE(reference_type, 'other') END, SUM(amount), COUNT(*)
      FROM transfers WHERE kind = 'usage' GROUP BY 1, 2, 3`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('DROP TRIGGER transfers_usage_daily ON transfers');
  await knex.raw('DROP FUNCTION usage_daily_add()');
  await knex.schema.dropTable('usage_daily');
}
