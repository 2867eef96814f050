import type { Knex } from 'knex';

/**
 * Referrals (issue 17). Each user has one referral code (made on first use). A sign-up through a
 * link is one `referrals` row (one per referee: UNIQUE), with the referee's `referral` lot; the
 * referrer's reward is granted when the referee's first payment is paid and taken back if that
 * payment is refunded within 30 days. `referral_browsers` remembers the browsers a user was seen
 * in (the signed `tally_bid` cookie) to refuse self-referrals from the same browser;
 * `payment_card_fingerprints` caches Stripe's card fingerprint of payments to refuse them by card.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE referral_codes (
      user_id uuid PRIMARY KEY REFERENCES users (id),
      code text NOT NULL UNIQUE CHECK (code ~ '^[a-z0-9]{6,20}$'),
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`
    CREATE TABLE referral_browsers (
      user_id uuid NOT NULL REFERENCES users (id),
      browser_id text NOT NULL CHECK (length(browser_id) BETWEEN 1 AND 100),
      created_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (browser_id, user_id)
    )`);
  await knex.raw(`
    CREATE TABLE referrals (
      id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
      referrer_id uuid NOT NULL REFERENCES users (id),
      referee_id uuid NOT NULL UNIQUE REFERENCES users (id),
      status text NOT NULL CHECK (status IN ('signed_up', 'rewarded', 'reversed', 'self_referral', 'over_monthly_cap')),
      referee_transfer_id text REFERENCES transfers (id),
      reward_transfer_id text REFERENCES transfers (id),
      reward_payment_id uuid REFERENCES payments (id),
      rewarded_at timestamptz,
      reversed_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      CHECK (referrer_id <> referee_id),
      CHECK ((status IN ('rewarded', 'reversed')) = (reward_transfer_id IS NOT NULL AND rewarded_at IS NOT NULL)),
      CHECK ((status = 'reversed') = (reversed_at IS NOT NULL))
    )`);
  await knex.raw(`CREATE INDEX referrals_referrer ON referrals (referrer_id, rewarded_at)`);
  await knex.raw(`CREATE INDEX referrals_reward_payment ON referrals (reward_payment_id) WHERE reward_payment_id IS NOT NULL`);
  await knex.raw(`
    CREATE TABLE payment_card_fingerprints (
      payment_id uuid PRIMARY KEY REFERENCES payments (id),
      user_id uuid NOT NULL REFERENCES users (id),
      fingerprint text NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
  await knex.raw(`CREATE INDEX payment_card_fingerprints_user ON payment_card_fingerprints (user_id)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('payment_card_fingerprints');
  await knex.schema.dropTable('referrals');
  await knex.schema.dropTable('referral_browsers');
  await knex.schema.dropTable('referral_codes');
}
