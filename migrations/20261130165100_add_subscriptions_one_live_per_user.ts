import type { Knex } from 'knex';

/**
 * One live subscription per user, enforced by the database (issue 15: "One active subscription per
 * user"). Two Checkout Sessions opened before either completed can both be paid; whichever
 * subscription is mirrored second meets this partial unique index, and is recorded with
 * `duplicate_of` naming the first: it is never credited and is cancelled at Stripe
 * (src/subscriptions/subscriptions-store.ts `upsertSubscription`, subscriptions-service.ts).
 * Live = the statuses Stripe bills in (active, trialing, past_due, unpaid, paused).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('subscriptions', (t) => {
    t.uuid('duplicate_of').references('id').inTable('subscriptions');
  });
  await knex.raw(`ALTER TABLE subscriptions ADD CONSTRAINT subscriptions_not_own_duplicate CHECK (duplicate_of IS DISTINCT FROM id)`);
  await knex.raw(`CREATE UNIQUE INDEX subscriptions_one_live_per_user ON subscriptions (user_id)
    WHERE status IN ('active', 'trialing', 'past_due', 'unpaid', 'paused') AND duplicate_of IS NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw(`DROP INDEX subscriptions_one_live_per_user`);
  await knex.schema.alterTable('subscriptions', (t) => {
    t.dropChecks(['subscriptions_not_own_duplicate']);
    t.dropColumn('duplicate_of');
  });
}
