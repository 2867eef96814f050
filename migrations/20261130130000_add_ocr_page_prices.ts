import type { Knex } from 'knex';

/**
 * OCR results that follow the work (GitHub issue 12):
 *
 * - `operation_price_components`: what each kind of unit of an operation costs, in millicredits
 *   (for OCR: a page read by OCR, a page read from its text layer, a blank page). The operation's
 *   `per_unit_millicredits` stays the worst case, which the estimate holds.
 * - `tasks.language`: the language asked for at upload (null: detected per page);
 *   `tasks.result_key` / `searchable_pdf_key`: the JSON result and searchable PDF in file storage.
 * - `task_pages`: `blank` pages, the language each page was read in, the quarter turn applied,
 *   the low-confidence flag, and what the page was charged.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('operation_price_components', (t) => {
    t.text('operation').notNullable().references('operation').inTable('operation_prices').onDelete('CASCADE');
    t.text('component').notNullable();
    t.text('name').notNullable();
    t.bigInteger('millicredits').notNullable();
    t.integer('sort_order').notNullable().defaultTo(0);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.primary(['operation', 'component']);
  });
  await knex.raw(`ALTER TABLE operation_price_components
    ADD CONSTRAINT operation_price_components_nonnegative CHECK (millicredits >= 0)`);

  await knex.schema.alterTable('tasks', (t) => {
    t.text('language');
    t.text('result_key');
    t.text('searchable_pdf_key');
  });
  await knex.raw(`ALTER TABLE tasks ADD CONSTRAINT tasks_language_check CHECK (language IS NULL OR language IN ('eng', 'fra', 'deu', 'spa'))`);

  await knex.schema.alterTable('task_pages', (t) => {
    t.text('language');
    t.smallint('rotation').notNullable().defaultTo(0);
    t.boolean('low_confidence').notNullable().defaultTo(false);
    t.bigInteger('charged_millicredits');
  });
  await knex.raw(`
    ALTER TABLE task_pages
      DROP CONSTRAINT task_pages_source_check,
      ADD CONSTRAINT task_pages_source_check CHECK (source IN ('text-layer', 'ocr', 'blank')),
      ADD CONSTRAINT task_pages_rotation_check CHECK (rotation IN (0, 90, 180, 270)),
      ADD CONSTRAINT task_pages_charged_nonnegative CHECK (charged_millicredits IS NULL OR charged_millicredits >= 0)`);
}

export async function down(knex: Knex): Promise<void> {
  // blank pages did not exist before: they were OCR pages that found nothing
  await knex('task_pages').where({ source: 'blank' }).update({ source: 'ocr' });
  await knex.raw(`
    ALTER TABLE task_pages
      DROP CONSTRAINT task_pages_charged_nonnegative,
      DROP CONSTRAINT task_pages_rotation_check,
      DROP CONSTRAINT task_pages_source_check,
      ADD CONSTRAINT task_pages_source_check CHECK (source IN ('text-layer', 'ocr'))`);
  await knex.schema.alterTable('task_pages', (t) => {
    t.dropColumn('charged_millicredits');
    t.dropColumn('low_confidence');
    t.dropColumn('rotation');
    t.dropColumn('language');
  });
  await knex.raw('ALTER TABLE tasks DROP CONSTRAINT tasks_language_check');
  await knex.schema.alterTable('tasks', (t) => {
    t.dropColumn('searchable_pdf_key');
    t.dropColumn('result_key');
    t.dropColumn('language');
  });
  await knex.schema.dropTable('operation_price_components');
}
