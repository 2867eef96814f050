import type { Db, Trx } from '../db/database.ts';

/** Receipt numbers (table `receipts`, counter `receipt_counter`; migration 20261130200000). */

export interface ReceiptRow {
  paymentId: string;
  number: number;
  issuedAt: Date;
  cardBrand: string | null;
  cardLast4: string | null;
}

const mapRow = (r: { payment_id: string; number: number; issued_at: Date; card_brand: string | null; card_last4: string | null }): ReceiptRow => ({
  paymentId: r.payment_id,
  number: r.number,
  issuedAt: r.issued_at,
  cardBrand: r.card_brand,
  cardLast4: r.card_last4,
});

/** The receipt of a payment, if numbered. */
export async function findReceipt(db: Db | Trx, paymentId: string): Promise<ReceiptRow | undefined> {
  const row = await db('receipts').where({ payment_id: paymentId }).first();
  return row ? mapRow(row) : undefined;
}

/**
 * Gives `paymentId` the next receipt number inside `trx`, or returns the one it has. The counter
 * row is locked first, so issuers queue on it and the existence check after the lock sees every
 * committed receipt; the counter moves only together with the insert, in the same transaction, so
 * a rollback returns the number: the sequence has no gaps and no duplicates.
 */
export async function allocateReceipt(trx: Trx, paymentId: string, issuedAt: Date): Promise<ReceiptRow> {
  const { rows } = await trx.raw('SELECT last_number FROM receipt_counter WHERE id FOR UPDATE');
  const last = (rows[0] as { last_number: number }).last_number;
  const existing = await findReceipt(trx, paymentId);
  if (existing) return existing;
  await trx('receipt_counter').where({ id: true }).update({ last_number: last + 1 });
  const [row] = await trx('receipts').insert({ payment_id: paymentId, number: last + 1, issued_at: issuedAt }).returning('*');
  return mapRow(row);
}

/** Remembers the card a receipt was paid with (from Stripe, asked once). */
export async function saveReceiptCard(db: Db, paymentId: string, brand: string, last4: string): Promise<void> {
  await db('receipts').where({ payment_id: paymentId }).update({ card_brand: brand, card_last4: last4 });
}
