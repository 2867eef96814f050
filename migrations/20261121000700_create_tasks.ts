import type { Knex } from 'knex';

/**
 * Metered OCR tasks (GitHub issue 5). A task owns one upload (stored under the data dir by a
 * generated key), one active hold at a time (`hold_id`, reserved for `estimated_millicredits`) and
 * one pg-boss job at a time (`job_id`). The worker marks a task `completed` in the same transaction
 * that posts its hold, and `failed` in the same transaction that voids it, so `charged_millicredits`
 * is always what the ledger charged. Per-page statistics live in `task_pages`.
 *
 * The queue's own tables live in the `pgboss` schema, which pg-boss creates and migrates itself
 * when it starts (src/tasks/task-queue.ts).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('tasks', (t) => {
    t.uuid('id').primary();
    t.uuid('user_id').notNullable().references('id').inTable('users').onDelete('RESTRICT');
    t.text('status').notNullable().defaultTo('queued');
    // The client's file name, for display and downloads only: storage uses `storage_key`.
    t.text('file_name').notNullable();
    t.text('kind').notNullable();
    t.text('mime_type').notNullable();
    t.bigInteger('size_bytes').notNullable();
    t.text('sha256').notNullable();
    t.text('storage_key').notNullable().unique();
    t.integer('pages').notNullable();
    t.integer('pages_done').notNullable().defaultTo(0);
    t.integer('words');
    t.double('mean_confidence');
    t.integer('duration_ms');
    t.text('result_text');
    t.bigInteger('estimated_millicredits').notNullable();
    t.bigInteger('charged_millicredits');
    t.text('hold_id').notNullable().unique();
    t.uuid('job_id').notNullable().unique();
    t.integer('attempts').notNullable().defaultTo(0);
    t.text('error_code');
    t.text('error_detail');
    t.text('idempotency_key');
    // Millisecond precision so keyset cursors round-trip through JS Dates exactly.
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw("date_trunc('milliseconds', clock_timestamp())"));
    t.timestamp('started_at', { useTz: true });
    t.timestamp('completed_at', { useTz: true });
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
  });
  await knex.raw(`
    ALTER TABLE tasks
      ADD CONSTRAINT tasks_status_check CHECK (status IN ('queued', 'processing', 'completed', 'failed')),
      ADD CONSTRAINT tasks_kind_check CHECK (kind IN ('pdf', 'png', 'jpeg', 'tiff', 'webp')),
      ADD CONSTRAINT tasks_size_positive CHECK (size_bytes > 0),
      ADD CONSTRAINT tasks_pages_range CHECK (pages > 0 AND pages_done >= 0 AND pages_done <= pages),
      ADD CONSTRAINT tasks_estimate_positive CHECK (estimated_millicredits > 0),
      ADD CONSTRAINT tasks_charged_nonnegative CHECK (charged_millicredits IS NULL OR charged_millicredits >= 0),
      ADD CONSTRAINT tasks_completed_settled CHECK (status <> 'completed' OR (charged_millicredits IS NOT NULL AND completed_at IS NOT NULL)),
      ADD CONSTRAINT tasks_failed_explained CHECK (status <> 'failed' OR (error_code IS NOT NULL AND completed_at IS NOT NULL)),
      ADD CONSTRAINT tasks_idempotency_key_length CHECK (idempotency_key IS NULL OR length(idempotency_key) BETWEEN 1 AND 255)`);
  await knex.raw(`CREATE UNIQUE INDEX tasks_user_idempotency_key ON tasks (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL`);
  await knex.raw(`CREATE INDEX tasks_user_created ON tasks (user_id, created_at DESC, id DESC)`);
  await knex.raw(`CREATE INDEX tasks_unfinished ON tasks (created_at) WHERE status IN ('queued', 'processing')`);

  await knex.schema.createTable('task_pages', (t) => {
    t.uuid('task_id').notNullable().references('id').inTable('tasks').onDelete('CASCADE');
    t.integer('page').notNullable();
    t.text('source').notNullable();
    t.integer('words').notNullable();
    t.double('confidence');
    t.integer('duration_ms').notNullable();
    t.primary(['task_id', 'page']);
  });
  await knex.raw(`
    ALTER TABLE task_pages
      ADD CONSTRAINT task_pages_page_positive CHECK (page > 0),
      ADD CONSTRAINT task_pages_source_check CHECK (source IN ('text-layer', 'ocr')),
      ADD CONSTRAINT task_pages_words_nonnegative CHECK (words >= 0)`);
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('task_pages');
  await knex.schema.dropTable('tasks');
}
