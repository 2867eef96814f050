import type { Knex } from 'knex';

const S = 'stripe_emulator';

/**
 * Customers can be deleted (`DELETE /v1/customers/:id`, https://docs.stripe.com/api/customers/delete):
 * the row stays (payments and invoices point to it) with `deleted_at` set and its personal fields
 * cleared; retrieving it answers `{id, object: 'customer', deleted: true}` as Stripe does.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.withSchema(S).alterTable('customers', (t) => {
    t.timestamp('deleted_at', { useTz: true });
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.withSchema(S).alterTable('customers', (t) => {
    t.dropColumn('deleted_at');
  });
}
