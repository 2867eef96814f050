import type { Pricing } from '../credits/pricing-service.ts';
import type { Trx } from '../db/database.ts';
import type { OperationPrice } from '../credits/pricing-store.ts';

/** The operation OCR tasks are priced as (`operation_prices.operation`). */
export const OCR_OPERATION = 'ocr';

/**
 * What an OCR job of `pages` pages costs at today's price, in millicredits (base + per page, from
 * `operation_prices`). The one place a task's cost is computed: the estimate shown before an
 * upload, the hold placed for it, a retry's new hold and the amount the worker posts all come here.
 */
export async function ocrCost(pricing: Pricing, pages: number): Promise<{ millicredits: number; price: OperationPrice }> {
  return pricing.estimate(OCR_OPERATION, pages);
}

/**
 * What a finished OCR job costs, page by page as each turned out (issue 12): the base per
 * document plus, for each page, the price of its kind (`ocr`, `text-layer`, `blank`, from
 * `operation_price_components`), in millicredits, with the lines of the breakdown. Pages the
 * processor did not report are not charged. Never above {@link ocrCost} of the same pages while
 * no kind costs more than the per-page price the estimate holds; the caller still caps the post
 * at the hold.
 */
export async function ocrSettlement(pricing: Pricing, pages: ReadonlyArray<{ source: string }>, trx?: Trx) {
  const units: Record<string, number> = {};
  for (const page of pages) units[page.source] = (units[page.source] ?? 0) + 1;
  return pricing.priceUnits(OCR_OPERATION, units, trx);
}
