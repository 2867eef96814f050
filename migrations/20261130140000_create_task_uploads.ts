import type { Knex } from 'knex';

/**
 * Uploads kept between the estimate and the confirmation (issue 10: "estimate once, keep the
 * upload, confirm it"). The /tasks page uploads a document once: it is inspected, stored under a
 * generated key and priced; confirming turns the upload into a task with the same id (the upload
 * row is deleted in the transaction that inserts the task and places its hold), so a confirmation
 * sent twice makes one task. Unconfirmed uploads expire; their files are removed by the next upload.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('task_uploads', (t) => {
    t.uuid('id').primary();
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('CASCADE');
    t.text('file_name').notNullable();
    t.text('kind').notNullable();
    t.text('mime_type').notNullable();
    t.bigInteger('size_bytes').notNullable();
    t.text('sha256').notNullable();
    t.text('storage_key').notNullable().unique();
    t.integer('pages').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
  });
  await knex.raw(`
    ALTER TABLE task_uploads
      ADD CONSTRAINT task_uploads_kind_check CHECK (kind IN ('pdf', 'png', 'jpeg', 'tiff', 'webp')),
      ADD CONSTRAINT task_uploads_size_positive CHECK (size_bytes > 0),
      ADD CONSTRAINT task_uploads_pages_positive CHECK (pages > 0),
      ADD CONSTRAINT task_uploads_expiry_after_creation CHECK (expires_at > created_at)`);
  await knex.raw(`CREATE INDEX task_uploads_user ON task_uploads (user_id, created_at)`);
  await knex.raw(`CREATE INDEX task_uploads_expires ON task_uploads (expires_at)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('task_uploads');
}
