import crypto from 'node:crypto';
import type { Db } from '../../src/db/database.ts';

/**
 * Backdated ledger history for insight tests (the ledger's functions stamp transfers with the
 * database clock, so months ago cannot be written through them). Each helper writes what the
 * ledger's own function would — transfer, lot or allocation, and the account totals — so the
 * books check still passes.
 */

/** A bonus lot of `millicredits` granted at `at`; returns the lot id. */
export async function grantAt(db: Db, userId: string, millicredits: number, at: Date, expiresAt: Date | null = null): Promise<string> {
  const id = `backdated-grant:${crypto.randomUUID()}`;
  return db.transaction(async (trx) => {
    const account = await trx('accounts').where({ user_id: userId }).forUpdate().first('id', 'credits_posted', 'debits_posted');
    const promotions = await trx('accounts').where({ code: 'promotions' }).first('id');
    await trx('transfers').insert({
      id,
      debit_account_id: promotions.id,
      credit_account_id: account.id,
      amount: millicredits,
      kind: 'bonus',
      reason: 'Backdated grant',
      actor: 'test',
      credit_balance_after: account.credits_posted + millicredits - account.debits_posted,
      created_at: at,
    });
    const [lot] = await trx('lots')
      .insert({ account_id: account.id, transfer_id: id, source: 'bonus', amount: millicredits, remaining: millicredits, expires_at: expiresAt, created_at: at })
      .returning('id');
    await trx('accounts').where({ id: account.id }).increment('credits_posted', millicredits);
    return lot.id as string;
  });
}

/** A usage (or expiry) transfer of `millicredits` from `lotId` at `at`, referencing a task. */
export async function spendAt(db: Db, userId: string, lotId: string, millicredits: number, at: Date, kind: 'usage' | 'expiry' = 'usage'): Promise<void> {
  const id = `backdated-${kind}:${crypto.randomUUID()}`;
  await db.transaction(async (trx) => {
    const account = await trx('accounts').where({ user_id: userId }).forUpdate().first('id', 'credits_posted', 'debits_posted');
    const other = await trx('accounts').where({ code: kind === 'usage' ? 'usage' : 'expired' }).first('id');
    await trx('transfers').insert({
      id,
      debit_account_id: account.id,
      credit_account_id: other.id,
      amount: millicredits,
      kind,
      reason: kind === 'usage' ? 'Backdated job' : 'Backdated expiry',
      actor: 'test',
      reference_type: kind === 'usage' ? 'task' : 'lot',
      reference_id: kind === 'usage' ? crypto.randomUUID() : lotId,
      debit_balance_after: account.credits_posted - account.debits_posted - millicredits,
      created_at: at,
    });
    await trx('transfer_allocations').insert({ transfer_id: id, lot_id: lotId, amount: millicredits, created_at: at });
    await trx('lots').where({ id: lotId }).decrement('remaining', millicredits);
    await trx('accounts').where({ id: account.id }).increment('debits_posted', millicredits);
  });
}

/** The first instant of the UTC month `offset` months from the one containing `now`. */
export function monthStart(now: Date, offset: number): Date {
  return new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + offset, 1));
}

/** `YYYY-MM` of a date (UTC). */
export const ym = (d: Date) => d.toISOString().slice(0, 7);
