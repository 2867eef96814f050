import type { Knex } from 'knex';

/**
 * Price list of metered operations (reference data, seeded): a cost per task plus a cost per unit
 * (e.g. per page), in millicredits.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('operation_prices', (t) => {
    t.text('operation').primary();
    t.text('name').notNullable();
    t.bigInteger('base_millicredits').notNullable();
    t.bigInteger('per_unit_millicredits').notNullable();
    t.text('unit').notNullable();
    t.boolean('active').notNullable().defaultTo(true);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE operation_prices ADD CONSTRAINT operation_prices_nonnegative
    CHECK (base_millicredits >= 0 AND per_unit_millicredits >= 0)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('operation_prices');
}
