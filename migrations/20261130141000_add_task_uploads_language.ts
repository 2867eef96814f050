import type { Knex } from 'knex';

/**
 * The OCR language chosen with a kept upload (issue 10's "upload once" meets issue 12's
 * languages): `task_uploads.language`, checked as `tasks.language` is (null: detected per page),
 * and handed to the task when the upload is confirmed.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.alterTable('task_uploads', (t) => {
    t.text('language');
  });
  await knex.raw(`ALTER TABLE task_uploads ADD CONSTRAINT task_uploads_language_check CHECK (language IS NULL OR language IN ('eng', 'fra', 'deu', 'spa'))`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.raw('ALTER TABLE task_uploads DROP CONSTRAINT task_uploads_language_check');
  await knex.schema.alterTable('task_uploads', (t) => {
    t.dropColumn('language');
  });
}
