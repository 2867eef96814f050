import type { Db, Trx } from '../db/database.ts';
import type { StatementEntry, TransferKind } from '../ledger/ledger-types.ts';

/** SQL for single statement lines (lists go through `ledger.listTransfers`). */

interface DbStatementRow {
  id: string;
  kind: TransferKind;
  amount: number;
  incoming: boolean;
  debit_balance_after: number | null;
  credit_balance_after: number | null;
  reason: string | null;
  actor: string;
  reference_type: string | null;
  reference_id: string | null;
  hold_id: string | null;
  created_at: Date;
}

/**
 * The transfer `transferId` as a line of `userId`'s statement, or undefined when it does not
 * exist *or does not touch that user's account* (the caller answers 404 either way).
 */
export async function findStatementEntry(db: Db | Trx, userId: string, transferId: string): Promise<StatementEntry | undefined> {
  const row = (await db('transfers as t')
    .join('accounts as a', (j) => j.on('a.id', 't.credit_account_id').orOn('a.id', 't.debit_account_id'))
    .where('a.user_id', userId)
    .where('t.id', transferId)
    .first(
      't.id',
      't.kind',
      't.amount',
      db.raw('(t.credit_account_id = a.id) AS incoming'),
      't.debit_balance_after',
      't.credit_balance_after',
      't.reason',
      't.actor',
      't.reference_type',
      't.reference_id',
      't.hold_id',
      't.created_at',
    )) as DbStatementRow | undefined;
  if (!row) return undefined;
  return {
    id: row.id,
    kind: row.kind,
    amount: row.incoming ? row.amount : -row.amount,
    balanceAfter: row.incoming ? row.credit_balance_after : row.debit_balance_after,
    reason: row.reason,
    actor: row.actor,
    reference: row.reference_type && row.reference_id ? { type: row.reference_type, id: row.reference_id } : null,
    holdId: row.hold_id,
    createdAt: row.created_at,
  };
}
