import type { Knex } from 'knex';

/**
 * Accounts (issue 3): when each user last signed in (admin view), a length rule on names, and an
 * index so a user's sessions are found by `sess->>'userId'` (sessions list, revoke-others).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('users', (t) => {
    t.timestamp('last_login_at', { useTz: true });
  });
  await knex.raw(`ALTER TABLE users ADD CONSTRAINT users_name_length CHECK (char_length(name) BETWEEN 1 AND 100)`);
  await knex.raw(`CREATE INDEX users_created_at_id ON users (created_at DESC, id DESC)`);
  await knex.raw(`CREATE INDEX session_user_id ON "session" ((sess->>'userId'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX session_user_id`);
  await knex.raw(`DROP INDEX users_created_at_id`);
  await knex.raw(`ALTER TABLE users DROP CONSTRAINT users_name_length`);
  await knex.schema.alterTable('users', (t) => {
    t.dropColumn('last_login_at');
  });
}
