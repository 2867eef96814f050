import type { Knex } from 'knex';

/**
 * Visitors' trial leads (issue 17). A lead is an anonymous account: a `users` row of role `lead`
 * (no password can match: its hash is not a bcrypt hash) holding one `trial` lot, plus a `leads`
 * row with the hashed client IP (the per-IP per-day limit) and, once someone signs up with its
 * cookie, who claimed it (once: `claimed_by` is set under the lead's row lock).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`ALTER TABLE users DROP CONSTRAINT users_role_check`);
  await knex.raw(`ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('user', 'admin', 'lead'))`);
  await knex.raw(`
    CREATE TABLE leads (
      id uuid PRIMARY KEY REFERENCES users (id),
      ip_hash text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      expires_at timestamptz NOT NULL,
      claimed_by uuid REFERENCES users (id),
      claimed_at timestamptz,
      CHECK ((claimed_by IS NULL) = (claimed_at IS NULL)),
      CHECK (expires_at > created_at)
    )`);
  await knex.raw(`CREATE INDEX leads_ip_day ON leads (ip_hash, created_at)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('leads');
  await knex.raw(`DELETE FROM users WHERE role = 'lead' AND NOT EXISTS (SELECT 1 FROM accounts WHERE user_id = users.id)`);
  await knex.raw(`ALTER TABLE users DROP CONSTRAINT users_role_check`);
  await knex.raw(`ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('user', 'admin'))`);
}
