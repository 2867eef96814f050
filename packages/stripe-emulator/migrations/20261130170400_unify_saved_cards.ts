import type { Knex } from 'knex';

/**
 * One notion of a saved card (issue 14): a customer's default card for subscriptions
 * (`invoice_settings.default_payment_method`) becomes a pointer to a PaymentMethod row attached to
 * the customer, the same rows auto-recharge and SetupIntents use, instead of a copy of the card
 * kept on the customer. Existing copies become PaymentMethod rows; the test number they never
 * kept is taken from what they did when charged (4242 paid, 0341 is declined when charged).
 */
const S = 'stripe_emulator';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.withSchema(S).alterTable('customers', (t) => {
    t.text('default_payment_method_id').references('id').inTable(`${S}.payment_methods`);
  });
  await knex.raw(`
    INSERT INTO ${S}.payment_methods (id, created, customer_id, card, billing_details, metadata, test_number)
    SELECT c.default_payment_method->>'id', c.created, c.id, c.default_payment_method->'card', '{}', '{}',
           CASE WHEN c.default_payment_method->>'outcome' = 'succeed' THEN '4242424242424242' ELSE '4000000000000341' END
      FROM ${S}.customers c
     WHERE c.default_payment_method IS NOT NULL
    ON CONFLICT (id) DO NOTHING`);
  await knex.raw(`UPDATE ${S}.customers SET default_payment_method_id = default_payment_method->>'id' WHERE default_payment_method IS NOT NULL`);
  await knex.schema.withSchema(S).alterTable('customers', (t) => {
    t.dropColumn('default_payment_method');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.withSchema(S).alterTable('customers', (t) => {
    t.jsonb('default_payment_method');
  });
  await knex.raw(`
    UPDATE ${S}.customers c
       SET default_payment_method = jsonb_build_object(
             'id', m.id, 'card', m.card,
             'outcome', CASE WHEN m.test_number IN ('4242424242424242', '5555555555554444') THEN 'succeed' ELSE 'decline' END)
      FROM ${S}.payment_methods m
     WHERE m.id = c.default_payment_method_id`);
  await knex.schema.withSchema(S).alterTable('customers', (t) => {
    t.dropColumn('default_payment_method_id');
  });
}
