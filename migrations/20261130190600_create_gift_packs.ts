import type { Knex } from 'knex';

/**
 * Packs bought as gifts (issue 17). A Checkout payment marked here grants nothing to its buyer:
 * once paid it gets a gift code (`code`) to pass on; redeeming it grants the pack (credits and
 * bonus) once, as a `gift_code` lot (transfer `gift_code:<paymentId>`). A refund claws back from
 * whoever redeemed it, like any purchase; a refund before redemption lowers what the code is worth
 * (`refunded_millicredits`), and a full one voids it.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.raw(`
    CREATE TABLE gift_packs (
      payment_id uuid PRIMARY KEY REFERENCES payments (id),
      buyer_id uuid NOT NULL REFERENCES users (id),
      code text UNIQUE CHECK (code ~ '^GIFT-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$'),
      millicredits bigint CHECK (millicredits > 0),
      refunded_millicredits bigint NOT NULL DEFAULT 0 CHECK (refunded_millicredits >= 0),
      redeemed_by uuid REFERENCES users (id),
      redeemed_at timestamptz,
      created_at timestamptz NOT NULL DEFAULT now(),
      issued_at timestamptz,
      CHECK ((code IS NULL) = (issued_at IS NULL) AND (code IS NULL) = (millicredits IS NULL)),
      CHECK ((redeemed_by IS NULL) = (redeemed_at IS NULL)),
      CHECK (refunded_millicredits <= COALESCE(millicredits, 0))
    )`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('gift_packs');
}
