import type { Knex } from 'knex';

/**
 * The audit log: every auth event and admin action (who, what, on what, from where, when).
 * Append-only like the ledger: a trigger refuses UPDATE, DELETE and TRUNCATE.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('audit_log', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    // `user:<id>`, `admin:<id>`, `system`, `anonymous`, … (the ledger's actor convention).
    t.text('actor').notNullable();
    t.uuid('actor_user_id').references('id').inTable('users').onDelete('RESTRICT');
    t.text('action').notNullable();
    t.text('target_type');
    t.text('target_id');
    t.text('ip');
    t.text('user_agent');
    t.jsonb('details').notNullable().defaultTo('{}');
    t.index(['actor_user_id', 'id']);
    t.index(['action', 'id']);
    t.index(['target_type', 'target_id']);
  });
  await knex.raw(`
    ALTER TABLE audit_log
      ADD CONSTRAINT audit_log_action_format CHECK (action ~ '^[a-z][a-z0-9_.]{0,99}$'),
      ADD CONSTRAINT audit_log_actor_length CHECK (char_length(actor) BETWEEN 1 AND 200),
      ADD CONSTRAINT audit_log_target CHECK ((target_type IS NULL) = (target_id IS NULL))`);
  await knex.raw(`
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION '% is append-only: % refused', TG_TABLE_NAME, TG_OP USING ERRCODE = 'P0001';
    END $$`);
  await knex.raw(`CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()`);
  await knex.raw(`CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('audit_log');
  await knex.raw('DROP FUNCTION audit_log_append_only()');
}
