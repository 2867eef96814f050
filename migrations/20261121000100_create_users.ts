import type { Knex } from 'knex';

/** Users of Tally (people and API clients). Emails are stored normalized (trimmed, lowercase). */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.uuid('id').primary().defaultTo(knex.raw('gen_random_uuid()'));
    t.text('email').notNullable().unique();
    t.text('name').notNullable();
    t.text('password_hash').notNullable();
    t.text('role').notNullable().defaultTo('user');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`ALTER TABLE users ADD CONSTRAINT users_role_check CHECK (role IN ('user', 'admin'))`);
  await knex.raw(`ALTER TABLE users ADD CONSTRAINT users_email_normalized CHECK (email = lower(btrim(email)))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('users');
}
