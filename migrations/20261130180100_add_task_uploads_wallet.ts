import type { Knex } from 'knex';

/**
 * The wallet chosen with a kept upload (issue 16 meets "upload once"): the team whose pool the
 * confirmed job spends from (null: the uploader's own credits), and the API key that staged it
 * (null: a browser session). Confirming the upload places the hold with the same spender.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('task_uploads', (t) => {
    t.uuid('team_id').references('id').inTable('teams');
    t.uuid('api_key_id').references('id').inTable('api_keys');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.alterTable('task_uploads', (t) => {
    t.dropColumn('api_key_id');
    t.dropColumn('team_id');
  });
}
