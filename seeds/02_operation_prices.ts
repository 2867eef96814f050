import type { Knex } from 'knex';

/** The price list: OCR costs 1 credit per task plus 0.5 credit per page (millicredits here). */
export const OPERATION_PRICES = [
  { operation: 'ocr', name: 'Document OCR', base_millicredits: 1000, per_unit_millicredits: 500, unit: 'page' },
];

export async function seed(knex: Knex): Promise<void> {
  await knex('operation_prices')
    .insert(OPERATION_PRICES)
    .onConflict('operation')
    .merge(['name', 'base_millicredits', 'per_unit_millicredits', 'unit']);
}
