import type { Knex } from 'knex';

/**
 * The price list: OCR costs 1 credit per document plus, per page, 0.5 credit when the page is
 * read by OCR, 0.1 credit when it is read from its own text layer, nothing when it is blank
 * (millicredits here). `per_unit_millicredits` is the dearest page, what an estimate holds.
 */
export const OPERATION_PRICES = [
  { operation: 'ocr', name: 'Document OCR', base_millicredits: 1000, per_unit_millicredits: 500, unit: 'page' },
];

/** What each kind of page costs (GitHub issue 12). */
export const OPERATION_PRICE_COMPONENTS = [
  { operation: 'ocr', component: 'ocr', name: 'Page read by OCR', millicredits: 500, sort_order: 1 },
  { operation: 'ocr', component: 'text-layer', name: 'Page read from its text layer', millicredits: 100, sort_order: 2 },
  { operation: 'ocr', component: 'blank', name: 'Blank page', millicredits: 0, sort_order: 3 },
];

export async function seed(knex: Knex): Promise<void> {
  await knex('operation_prices')
    .insert(OPERATION_PRICES)
    .onConflict('operation')
    .merge(['name', 'base_millicredits', 'per_unit_millicredits', 'unit']);
  await knex('operation_price_components')
    .insert(OPERATION_PRICE_COMPONENTS)
    .onConflict(['operation', 'component'])
    .merge(['name', 'millicredits', 'sort_order']);
}
