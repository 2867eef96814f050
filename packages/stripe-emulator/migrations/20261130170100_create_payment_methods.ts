import type { Knex } from 'knex';

/**
 * Saved cards for off-session payments (issue 14): Stripe PaymentMethods of type `card`, attached
 * to a customer or not. `test_number` keeps which of Stripe's public test card numbers the method
 * stands for (https://docs.stripe.com/testing), so an off-session PaymentIntent on it behaves like
 * that card; the emulator accepts test numbers only, never real card data.
 */
const S = 'stripe_emulator';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.withSchema(S).createTable('payment_methods', (t) => {
    t.text('id').primary();
    t.specificType('seq', 'bigint GENERATED ALWAYS AS IDENTITY').notNullable().unique();
    t.timestamp('created', { useTz: true }).notNullable();
    t.text('customer_id').references('id').inTable(`${S}.customers`);
    t.jsonb('card').notNullable();
    t.jsonb('billing_details').notNullable();
    t.jsonb('metadata').notNullable().defaultTo('{}');
    t.text('test_number').notNullable();
  });
  await knex.raw(`CREATE INDEX payment_methods_customer ON ${S}.payment_methods (customer_id, seq) WHERE customer_id IS NOT NULL`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.withSchema(S).dropTable('payment_methods');
}
