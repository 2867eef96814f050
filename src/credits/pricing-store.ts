import type { Db, Trx } from '../db/database.ts';

/** A metered operation's price, in millicredits: `base` per task + `perUnit` per unit (e.g. page). */
export interface OperationPrice {
  operation: string;
  name: string;
  baseMillicredits: number;
  perUnitMillicredits: number;
  unit: string;
}

interface DbOperationPriceRow {
  operation: string;
  name: string;
  base_millicredits: number;
  per_unit_millicredits: number;
  unit: string;
  active: boolean;
}

function mapRow(r: DbOperationPriceRow): OperationPrice {
  return { operation: r.operation, name: r.name, baseMillicredits: r.base_millicredits, perUnitMillicredits: r.per_unit_millicredits, unit: r.unit };
}

export async function findActivePrice(db: Db | Trx, operation: string): Promise<OperationPrice | undefined> {
  const row = await db<DbOperationPriceRow>('operation_prices').where({ operation, active: true }).first();
  return row ? mapRow(row) : undefined;
}

export async function listActivePrices(db: Db | Trx): Promise<OperationPrice[]> {
  const rows = await db<DbOperationPriceRow>('operation_prices').where({ active: true }).orderBy('operation');
  return rows.map(mapRow);
}

/** What one kind of unit of an operation costs (e.g. an OCR page read from its text layer). */
export interface PriceComponent {
  operation: string;
  component: string;
  name: string;
  millicredits: number;
}

interface DbPriceComponentRow {
  operation: string;
  component: string;
  name: string;
  millicredits: string | number;
  sort_order: number;
}

export async function listPriceComponents(db: Db | Trx, operation?: string): Promise<PriceComponent[]> {
  const query = db<DbPriceComponentRow>('operation_price_components').orderBy(['operation', 'sort_order', 'component']);
  if (operation) query.where({ operation });
  const rows = await query;
  return rows.map((r) => ({ operation: r.operation, component: r.component, name: r.name, millicredits: Number(r.millicredits) }));
}
