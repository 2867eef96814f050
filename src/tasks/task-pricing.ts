import type { Pricing } from '../credits/pricing-service.ts';
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
