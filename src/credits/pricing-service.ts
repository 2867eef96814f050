import type { Db, Trx } from '../db/database.ts';
import { ValidationError } from '../http/errors.ts';
import { findActivePrice, listActivePrices, listPriceComponents, type OperationPrice, type PriceComponent } from './pricing-store.ts';

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

    /** The per-kind unit prices of `operation` (or of every operation), for price lists. */
    components(operation?: string): Promise<PriceComponent[]> {
      return listPriceComponents(db, operation);
    },

    /**
     * What the units actually processed cost: base + Σ count × the price of their kind, in
     * millicredits, with the lines of the breakdown. A kind without a component of its own is
     * priced at the operation's `perUnit` (the worst case an estimate holds). Reads in `trx`
     * when given, so a settlement prices with the list it commits against.
     *
     * @param units count of units by component, e.g. `{ ocr: 3, 'text-layer': 1, blank: 2 }`
     * @throws {ValidationError} 400 for an unknown operation
     */
    async priceUnits(
      operation: string,
      units: Record<string, number>,
      trx?: Trx,
    ): Promise<{ millicredits: number; base: number; lines: Array<PriceComponent & { units: number; subtotal: number }> }> {
      const source = trx ?? db;
      const price = await findActivePrice(source, operation);
      if (!price) throw new ValidationError([{ field: 'operation', message: `unknown operation "${operation}"` }]);
      const known = new Map((await listPriceComponents(source, operation)).map((c) => [c.component, c]));
      const lines: Array<PriceComponent & { units: number; subtotal: number }> = [];
      let total = price.baseMillicredits;
      for (const [component, count] of Object.entries(units)) {
        if (!Number.isSafeInteger(count) || count < 0 || count > MAX_UNITS) {
          throw new ValidationError([{ field: 'pages', message: `must be an integer from 0 to ${MAX_UNITS}` }]);
        }
        if (count === 0) continue;
        const each = known.get(component) ?? { operation, component, name: component, millicredits: price.perUnitMillicredits };
        lines.push({ ...each, units: count, subtotal: each.millicredits * count });
        total += each.millicredits * count;
      }
      return { millicredits: total, base: price.baseMillicredits, lines };
    },
  };
}

export type Pricing = ReturnType<typeof createPricing>;
