import type { Knex } from 'knex';

/**
 * Accounts owned by a user OR a team (issue 16), teams with members, budgets and invitations, API
 * keys (hash only), and who spent each hold (member, key) for budgets, key limits and usage by key.
 *
 * The ledger's functions are unchanged except `ledger_user_account(owner)`, which now finds the
 * account of a user or of a team by the owner's id (uuids are unique across both). A team's account
 * is created with the team, so the function never has to create one. Holds, lots, expiry,
 * statements and `ledger:check` treat both kinds of owned account the same.
 */
const ORIGINAL_OWNER_FN = `
    CREATE OR REPLACE FUNCTION ledger_user_account(p_user uuid) RETURNS accounts LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts;
    BEGIN
      SELECT * INTO a FROM accounts WHERE user_id = p_user FOR UPDATE;
      IF NOT FOUND THEN
        INSERT INTO accounts (user_id) VALUES (p_user) ON CONFLICT (user_id) DO NOTHING;
        SELECT * INTO a FROM accounts WHERE user_id = p_user FOR UPDATE;
      END IF;
      RETURN a;
    END $$`;

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('teams', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('name').notNullable();
    t.uuid('created_by').notNullable().references('id').inTable('users');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });

  await knex.schema.alterTable('accounts', (t) => {
    t.uuid('team_id').unique().references('id').inTable('teams').onDelete('RESTRICT');
  });
  await knex.raw(`ALTER TABLE accounts DROP CONSTRAINT accounts_owner`);
  await knex.raw(`ALTER TABLE accounts ADD CONSTRAINT accounts_owner CHECK (num_nonnulls(code, user_id, team_id) = 1)`);

  await knex.raw(`
    CREATE OR REPLACE FUNCTION ledger_user_account(p_user uuid) RETURNS accounts LANGUAGE plpgsql VOLATILE AS $$
    DECLARE a accounts;
    BEGIN
      SELECT * INTO a FROM accounts WHERE user_id = p_user FOR UPDATE;
      IF NOT FOUND THEN
        -- A team's pool (created with the team), else a user's first operation creates the account.
        SELECT * INTO a FROM accounts WHERE team_id = p_user FOR UPDATE;
        IF FOUND THEN RETURN a; END IF;
        INSERT INTO accounts (user_id) VALUES (p_user) ON CONFLICT (user_id) DO NOTHING;
        SELECT * INTO a FROM accounts WHERE user_id = p_user FOR UPDATE;
      END IF;
      RETURN a;
    END $$`);

  // Budgets are millicredits; NULL = no limit. A removed member keeps the row (history stays).
  await knex.schema.createTable('team_members', (t) => {
    t.uuid('team_id').notNullable().references('id').inTable('teams');
    t.uuid('user_id').notNullable().references('id').inTable('users');
    t.text('role').notNullable();
    t.bigInteger('daily_budget');
    t.bigInteger('monthly_budget');
    t.bigInteger('per_job_budget');
    t.timestamp('joined_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('removed_at', { useTz: true });
    t.primary(['team_id', 'user_id']);
    t.index(['user_id']);
  });
  await knex.raw(`
    ALTER TABLE team_members
      ADD CONSTRAINT team_members_role CHECK (role IN ('owner', 'admin', 'member')),
      ADD CONSTRAINT team_members_budgets CHECK (
        (daily_budget IS NULL OR daily_budget >= 0) AND (monthly_budget IS NULL OR monthly_budget >= 0)
        AND (per_job_budget IS NULL OR per_job_budget >= 0))`);

  await knex.schema.createTable('team_invitations', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('team_id').notNullable().references('id').inTable('teams');
    t.text('email').notNullable();
    t.text('role').notNullable();
    t.binary('token_hash').notNullable().unique();
    t.uuid('invited_by').notNullable().references('id').inTable('users');
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('accepted_at', { useTz: true });
    t.uuid('accepted_by').references('id').inTable('users');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['team_id']);
  });
  await knex.raw(`ALTER TABLE team_invitations ADD CONSTRAINT team_invitations_role CHECK (role IN ('owner', 'admin', 'member'))`);

  await knex.schema.createTable('api_keys', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('id').inTable('users');
    t.uuid('team_id').references('id').inTable('teams');
    t.text('name').notNullable();
    t.text('prefix').notNullable();
    t.binary('secret_hash').notNullable().unique();
    t.specificType('scopes', 'text[]').notNullable();
    t.bigInteger('monthly_credit_limit');
    t.integer('rate_limit_per_minute');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('last_used_at', { useTz: true });
    t.timestamp('revoked_at', { useTz: true });
    t.index(['user_id']);
  });
  await knex.raw(`
    ALTER TABLE api_keys
      ADD CONSTRAINT api_keys_limits CHECK ((monthly_credit_limit IS NULL OR monthly_credit_limit >= 0)
        AND (rate_limit_per_minute IS NULL OR rate_limit_per_minute > 0))`);

  // Who placed each hold: the member (user) and the API key, if any. Written in the hold's transaction.
  await knex.schema.createTable('spend_attributions', (t) => {
    t.text('hold_id').primary().references('id').inTable('holds');
    t.uuid('account_id').notNullable().references('id').inTable('accounts');
    t.uuid('user_id').notNullable().references('id').inTable('users');
    t.uuid('team_id').references('id').inTable('teams');
    t.uuid('api_key_id').references('id').inTable('api_keys');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.index(['team_id', 'user_id', 'created_at']);
    t.index(['api_key_id', 'created_at']);
  });

  // rate-limiter-flexible's RateLimiterPostgres table for per-key request limits.
  await knex.raw(`CREATE TABLE api_key_rate_limits (key varchar(255) PRIMARY KEY, points integer NOT NULL DEFAULT 0, expire bigint)`);
  await knex.raw(`CREATE INDEX api_key_rate_limits_expire ON api_key_rate_limits (expire)`);

  // A pack bought for a team: its credits go to the team's pool.
  await knex.schema.alterTable('payments', (t) => {
    t.uuid('team_id').references('id').inTable('teams');
  });

  // The wallet a user's jobs spend from unless they choose one ('personal' or 'team:<id>').
  await knex.schema.createTable('wallet_preferences', (t) => {
    t.uuid('user_id').primary().references('id').inTable('users');
    t.uuid('team_id').references('id').inTable('teams');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('wallet_preferences');
  await knex.schema.alterTable('payments', (t) => {
    t.dropColumn('team_id');
  });
  await knex.schema.dropTable('api_key_rate_limits');
  await knex.schema.dropTable('spend_attributions');
  await knex.schema.dropTable('api_keys');
  await knex.schema.dropTable('team_invitations');
  await knex.schema.dropTable('team_members');
  await knex.raw(ORIGINAL_OWNER_FN);
  await knex.raw(`DELETE FROM accounts WHERE team_id IS NOT NULL`);
  await knex.raw(`ALTER TABLE accounts DROP CONSTRAINT accounts_owner`);
  await knex.schema.alterTable('accounts', (t) => {
    t.dropColumn('team_id');
  });
  await knex.raw(`ALTER TABLE accounts ADD CONSTRAINT accounts_owner CHECK ((code IS NULL) <> (user_id IS NULL))`);
  await knex.schema.dropTable('teams');
}
