import type { Knex } from 'knex';

/**
 * Stripe webhook deliveries that were correctly signed but could not be used as they are: a
 * malformed event (no id, `data.object` null, an array body…; answered 400), an event type Tally
 * does not handle (answered 200), or a refund for a payment intent Tally does not know (answered
 * 200: retrying cannot help). Kept for admins to look at (`GET /api/admin/webhook-problems`).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('stripe_webhook_problems', (t) => {
    t.bigIncrements('id').primary();
    t.timestamp('received_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.text('event_id'); // null when the event had none
    t.text('event_type');
    t.text('problem').notNullable();
    t.text('detail').notNullable();
    t.integer('status_code').notNullable();
    // The start of the body as received (at most 4 KB), for the admin to see what came.
    t.text('payload_excerpt').notNullable();
    t.index(['received_at']);
  });
  await knex.raw(`
    ALTER TABLE stripe_webhook_problems
      ADD CONSTRAINT stripe_webhook_problems_problem CHECK (problem IN ('malformed', 'unknown_type', 'unknown_payment_intent')),
      ADD CONSTRAINT stripe_webhook_problems_excerpt CHECK (length(payload_excerpt) <= 4096),
      ADD CONSTRAINT stripe_webhook_problems_status CHECK (status_code BETWEEN 200 AND 499)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('stripe_webhook_problems');
}
