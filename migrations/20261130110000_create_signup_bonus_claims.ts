import type { Knex } from 'knex';

/**
 * One sign-up bonus per canonical email address (issue 9, defect 11): `a+x@b` and `a+y@b` are
 * both `a@b`, so plus-addressed sign-ups no longer collect the free credits again. The accounts
 * themselves may still be created. Existing users are claimed for (oldest account first).
 * The canonical form here and in signup-bonus-store.ts must stay the same.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE signup_bonus_claims (
      canonical_email text PRIMARY KEY CHECK (canonical_email = lower(canonical_email)),
      user_id uuid NOT NULL REFERENCES users (id),
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`
    INSERT INTO signup_bonus_claims (canonical_email, user_id, created_at)
    SELECT DISTINCT ON (canonical) canonical, id, created_at
    FROM (SELECT id, created_at, regexp_replace(email, '^([^+@]*)\\+[^@]*@', '\\1@') AS canonical FROM users) u
    ORDER BY canonical, created_at
    ON CONFLICT DO NOTHING`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('signup_bonus_claims');
}
