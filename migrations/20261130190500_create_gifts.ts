import type { Knex } from 'knex';

/**
 * Gifts of credits (issue 17). A gift moves purchased credits from the sender: straight into the
 * recipient's account (`delivered`) when the address has an account, else into the `gift_codes`
 * system account to wait for a claim link (`pending_claim`) until `claim_expires_at`, then
 * `claimed` (a `gift` lot for whoever claims it, once) or `returned` (a `gift_return` lot for the
 * sender). `lot_expires_at` is the soonest expiry of the credits given, kept by the lot made at
 * claim or return. Only a hash of the claim token is stored.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE gifts (
      id uuid PRIMARY KEY,
      sender_id uuid NOT NULL REFERENCES users (id),
      to_email text NOT NULL CHECK (to_email = lower(btrim(to_email))),
      recipient_id uuid REFERENCES users (id),
      millicredits bigint NOT NULL CHECK (millicredits > 0),
      message text CHECK (length(message) <= 500),
      status text NOT NULL CHECK (status IN ('delivered', 'pending_claim', 'claimed', 'returned')),
      transfer_id text NOT NULL UNIQUE REFERENCES transfers (id),
      claim_token_hash text UNIQUE,
      claim_expires_at timestamptz,
      lot_expires_at timestamptz,
      settle_transfer_id text UNIQUE REFERENCES transfers (id),
      created_at timestamptz NOT NULL DEFAULT now(),
      settled_at timestamptz,
      CHECK ((status = 'pending_claim') = (settle_transfer_id IS NULL AND status <> 'delivered') OR status = 'delivered'),
      CHECK (status <> 'pending_claim' OR (claim_token_hash IS NOT NULL AND claim_expires_at IS NOT NULL))
    )`);
  await knex.raw(`CREATE INDEX gifts_sender ON gifts (sender_id, created_at DESC)`);
  await knex.raw(`CREATE INDEX gifts_pending ON gifts (claim_expires_at) WHERE status = 'pending_claim'`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('gifts');
}
