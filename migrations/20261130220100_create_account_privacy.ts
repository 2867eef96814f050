import type { Knex } from 'knex';

/**
 * Data export, erasure and retention (issue 19; GDPR Art. 15 and 17).
 *
 * - `account_exports`: one ZIP per request, built by the privacy worker; at most one pending or
 *   building per user (a partial unique index: a second request is a 409, whatever the race).
 * - `account_deletions`: a scheduled (7 days) or immediate erasure and its progress: each step
 *   done is appended to `steps_done` in the transaction that did it, so a crash half-way resumes
 *   at the next step.
 * - `users.erased_at`: the account was pseudonymised; `tasks.file_deleted_at` /
 *   `tasks.results_deleted_at`: retention or erasure removed the upload / the results.
 * - The `forfeited` system account, and `ledger_forfeit_op(user, actor, reason)`: every unheld
 *   lot remainder of the user expires to it in one `expiry` transfer per lot (ids
 *   `forfeit:<lot>:<remaining>`, so a rerun forfeits nothing twice); the books stay balanced.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('account_exports', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('id').inTable('users');
    t.text('status').notNullable().defaultTo('pending');
    t.text('storage_key');
    t.bigInteger('size_bytes');
    t.integer('attempts').notNullable().defaultTo(0);
    t.timestamp('lease_until', { useTz: true });
    t.text('last_error');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.timestamp('ready_at', { useTz: true });
    t.timestamp('expires_at', { useTz: true });
    t.timestamp('downloaded_at', { useTz: true });
    t.index(['user_id', 'created_at']);
  });
  await knex.raw(`
    ALTER TABLE account_exports
      ADD CONSTRAINT account_exports_status_check CHECK (status IN ('pending', 'building', 'ready', 'failed', 'expired', 'deleted')),
      ADD CONSTRAINT account_exports_ready_file CHECK (status <> 'ready' OR (storage_key IS NOT NULL AND ready_at IS NOT NULL AND expires_at IS NOT NULL))`);
  await knex.raw(`CREATE UNIQUE INDEX account_exports_one_active ON account_exports (user_id) WHERE status IN ('pending', 'building')`);
  await knex.raw(`CREATE INDEX account_exports_due ON account_exports (created_at) WHERE status IN ('pending', 'building')`);

  await knex.schema.createTable('account_deletions', (t) => {
    t.uuid('user_id').primary().references('id').inTable('users');
    t.text('status').notNullable();
    t.timestamp('requested_at', { useTz: true }).notNullable();
    t.timestamp('scheduled_for', { useTz: true }).notNullable();
    // `user:<id>` or `admin:<id>` (the ledger's actor convention)
    t.text('requested_by').notNullable();
    t.text('reason');
    t.specificType('steps_done', 'text[]').notNullable().defaultTo('{}');
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('last_error');
    t.text('pseudonym');
    t.timestamp('cancelled_at', { useTz: true });
    t.timestamp('completed_at', { useTz: true });
  });
  await knex.raw(`
    ALTER TABLE account_deletions
      ADD CONSTRAINT account_deletions_status_check CHECK (status IN ('scheduled', 'cancelled', 'erasing', 'erased')),
      ADD CONSTRAINT account_deletions_erased_complete CHECK (status <> 'erased' OR completed_at IS NOT NULL)`);
  await knex.raw(`CREATE INDEX account_deletions_due ON account_deletions (scheduled_for) WHERE status IN ('scheduled', 'erasing')`);

  await knex.schema.alterTable('users', (t) => {
    t.timestamp('erased_at', { useTz: true });
  });
  await knex.schema.alterTable('tasks', (t) => {
    t.timestamp('file_deleted_at', { useTz: true });
    t.timestamp('results_deleted_at', { useTz: true });
  });
  await knex.raw(`CREATE INDEX tasks_file_kept ON tasks (created_at) WHERE file_deleted_at IS NULL`);
  await knex.raw(`CREATE INDEX tasks_results_kept ON tasks (completed_at) WHERE results_deleted_at IS NULL AND completed_at IS NOT NULL`);

  await knex('accounts').insert({ code: 'forfeited' }).onConflict('code').ignore();
  await knex.raw(`
    CREATE FUNCTION ledger_forfeit_op(p_user uuid, p_actor text, p_reason text)
    RETURNS bigint LANGUAGE plpgsql VOLATILE AS $$
    DECLARE acc uuid; dest uuid; l record; amt bigint; bal bigint; tid text; total bigint := 0;
    BEGIN
      SELECT id INTO acc FROM accounts WHERE user_id = p_user FOR UPDATE;
      IF NOT FOUND THEN RETURN 0; END IF;
      SELECT id INTO dest FROM accounts WHERE code = 'forfeited';
      FOR l IN SELECT id, source, remaining, held FROM lots WHERE account_id = acc AND remaining > held ORDER BY created_at, id LOOP
        amt := l.remaining - l.held;
        UPDATE accounts SET debits_posted = debits_posted + amt WHERE id = acc RETURNING credits_posted - debits_posted INTO bal;
        tid := 'forfeit:' || l.id || ':' || l.remaining;
        INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, reference_type, reference_id, debit_balance_after)
        VALUES (tid, acc, dest, amt, 'expiry', coalesce(p_reason, 'Credits forfeited at account erasure'), p_actor, 'lot', l.id::text, bal);
        UPDATE lots SET remaining = remaining - amt WHERE id = l.id;
        INSERT INTO transfer_allocations (transfer_id, lot_id, amount) VALUES (tid, l.id, amt);
        total := total + amt;
      END LOOP;
      RETURN total;
    END $$`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP FUNCTION ledger_forfeit_op(uuid, text, text)`);
  // the forfeited account stays if transfers point to it (transfers are never deleted)
  await knex.raw(`DELETE FROM accounts WHERE code = 'forfeited' AND NOT EXISTS (SELECT 1 FROM transfers WHERE credit_account_id = accounts.id OR debit_account_id = accounts.id)`);
  await knex.raw(`DROP INDEX tasks_results_kept`);
  await knex.raw(`DROP INDEX tasks_file_kept`);
  await knex.schema.alterTable('tasks', (t) => {
    t.dropColumn('results_deleted_at');
    t.dropColumn('file_deleted_at');
  });
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('erased_at');
  });
  await knex.schema.dropTable('account_deletions');
  await knex.schema.dropTable('account_exports');
}
