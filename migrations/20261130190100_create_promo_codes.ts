import type { Knex } from 'knex';

/**
 * Promo codes (issue 17): an admin creates a code worth some credits; each redemption is one
 * `promo` lot. `redemption_count` is kept by the redeeming transaction under the code's row lock, so
 * `max_redemptions` holds under any concurrency (CHECK below); one row per redemption, numbered
 * per user, so `per_user_limit` is a unique key too. Codes are case-insensitive (unique on upper()).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE promo_codes (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      code text NOT NULL CHECK (code ~ '^[A-Za-z0-9_-]{3,40}$'),
      credits_millicredits bigint NOT NULL CHECK (credits_millicredits > 0),
      credits_expire_days integer CHECK (credits_expire_days > 0),
      valid_from timestamptz,
      valid_until timestamptz,
      max_redemptions integer CHECK (max_redemptions > 0),
      per_user_limit integer NOT NULL DEFAULT 1 CHECK (per_user_limit > 0),
      new_users_only boolean NOT NULL DEFAULT false,
      redemption_count integer NOT NULL DEFAULT 0 CHECK (redemption_count >= 0 AND redemption_count <= COALESCE(max_redemptions, redemption_count)),
      created_by uuid NOT NULL REFERENCES users (id),
      created_at timestamptz NOT NULL DEFAULT now(),
      deactivated_at timestamptz,
      CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from)
    )`);
  await knex.raw(`CREATE UNIQUE INDEX promo_codes_code_unique ON promo_codes (upper(code))`);
  await knex.raw(`
    CREATE TABLE promo_redemptions (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      promo_code_id uuid NOT NULL REFERENCES promo_codes (id),
      user_id uuid NOT NULL REFERENCES users (id),
      seq integer NOT NULL CHECK (seq > 0),
      transfer_id text NOT NULL UNIQUE REFERENCES transfers (id),
      created_at timestamptz NOT NULL DEFAULT now(),
      UNIQUE (promo_code_id, user_id, seq)
    )`);
  await knex.raw(`CREATE INDEX promo_redemptions_user ON promo_redemptions (user_id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('promo_redemptions');
  await knex.schema.dropTable('promo_codes');
}
