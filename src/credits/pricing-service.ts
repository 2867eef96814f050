import type { Db } from '../db/database.ts';
import { ValidationError } from '../http/errors.ts';
import { findActivePrice, listActivePrices, type OperationPrice } from './pricing-store.ts';

/** Largest unit count priced in one estimate (keeps every cost far below 2^53 millicredits). */
export const MAX_UNITS = 100_000;

/**
 * Prices of metered operations, read from the `operation_prices` table (seeded reference data).
 * Cost = base + perUnit × units, integer millicredits.
 */
export function createPricing(db: Db) {
  return {
    /** Active prices, for the pricing page and `GET /api/credits/prices`. */
    list(): Promise<OperationPrice[]> {
      return listActivePrices(db);
    },

    /**
     * What `units` (pages) of `operation` cost, in millicredits. Throws {@link ValidationError}
     * (400) for an unknown operation or a unit count outside 1–{@link MAX_UNITS}.
     */
    async estimate(operation: string, units: number): Promise<{ millicredits: number; price: OperationPrice }> {
      const price = await findActivePrice(db, operation);
      if (!price) throw new ValidationError([{ field: 'operation', message: `unknown operation "${operation}"` }]);
      if (!Number.isSafeInteger(units) || units < 1 || units > MAX_UNITS) {
        throw new ValidationError([{ field: 'pages', message: `must be an integer from 1 to ${MAX_UNITS}` }]);
      }
      return { millicredits: price.baseMillicredits + price.perUnitMillicredits * units, price };
    },
  };
}

export type Pricing = ReturnType<typeof createPricing>;
