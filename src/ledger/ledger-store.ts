import type { Db, Trx } from '../db/database.ts';
import type { GrantKind, Hold, HoldStatus, Lot, Reference, StatementEntry, Transfer, TransferKind } from './ledger-types.ts';

/** SQL of the ledger. Every function takes the transaction (or db) as its first argument. */

export interface DbAccountRow {
  id: string;
  code: string | null;
  user_id: string | null;
  credits_posted: number;
  debits_posted: number;
  debits_pending: number;
  debt: number;
  created_at: Date;
}

interface DbTransferRow {
  id: string;
  debit_account_id: string;
  credit_account_id: string;
  amount: number;
  kind: TransferKind;
  reason: string | null;
  actor: string;
  reference_type: string | null;
  reference_id: string | null;
  hold_id: string | null;
  debit_balance_after: number | null;
  credit_balance_after: number | null;
  created_at: Date;
}

interface DbLotRow {
  id: string;
  account_id: string;
  transfer_id: string;
  source: GrantKind;
  amount: number;
  remaining: number;
  held: number;
  expires_at: Date | null;
  created_at: Date;
}

interface DbHoldRow {
  id: string;
  account_id: string;
  amount: number;
  status: HoldStatus;
  expires_at: Date;
  reason: string | null;
  actor: string;
  reference_type: string | null;
  reference_id: string | null;
  posted_amount: number | null;
  transfer_id: string | null;
  created_at: Date;
  resolved_at: Date | null;
}

const ref = (type: string | null, id: string | null): Reference | null => (type && id ? { type, id } : null);

export function mapTransfer(r: DbTransferRow): Transfer {
  return {
    id: r.id,
    debitAccountId: r.debit_account_id,
    creditAccountId: r.credit_account_id,
    amount: r.amount,
    kind: r.kind,
    reason: r.reason,
    actor: r.actor,
    reference: ref(r.reference_type, r.reference_id),
    holdId: r.hold_id,
    debitBalanceAfter: r.debit_balance_after,
    creditBalanceAfter: r.credit_balance_after,
    createdAt: r.created_at,
  };
}

export function mapLot(r: DbLotRow): Lot {
  return {
    id: r.id,
    accountId: r.account_id,
    transferId: r.transfer_id,
    source: r.source,
    amount: r.amount,
    remaining: r.remaining,
    held: r.held,
    expiresAt: r.expires_at,
    createdAt: r.created_at,
  };
}

export function mapHold(r: DbHoldRow): Hold {
  return {
    id: r.id,
    accountId: r.account_id,
    amount: r.amount,
    status: r.status,
    expiresAt: r.expires_at,
    reason: r.reason,
    actor: r.actor,
    reference: ref(r.reference_type, r.reference_id),
    postedAmount: r.posted_amount,
    transferId: r.transfer_id,
    createdAt: r.created_at,
    resolvedAt: r.resolved_at,
  };
}

// ---- accounts ----

/** Locks (FOR UPDATE) the user's account row, creating the account on first use. */
export async function lockUserAccount(trx: Trx, userId: string): Promise<DbAccountRow> {
  const found = await trx<DbAccountRow>('accounts').where({ user_id: userId }).forUpdate().first();
  if (found) return found;
  await trx('accounts').insert({ user_id: userId }).onConflict('user_id').ignore();
  return (await trx<DbAccountRow>('accounts').where({ user_id: userId }).forUpdate().first())!;
}

export async function lockAccountById(trx: Trx, accountId: string): Promise<DbAccountRow | undefined> {
  return trx<DbAccountRow>('accounts').where({ id: accountId }).forUpdate().first();
}

/** Locks (FOR UPDATE) the account that owns hold `holdId`; undefined when there is no such hold. */
export async function lockAccountOfHold(trx: Trx, holdId: string): Promise<DbAccountRow | undefined> {
  return trx<DbAccountRow>('accounts')
    .whereIn('id', trx('holds').select('account_id').where({ id: holdId }))
    .forUpdate()
    .first();
}

export async function findUserAccount(db: Db | Trx, userId: string): Promise<DbAccountRow | undefined> {
  return db<DbAccountRow>('accounts').where({ user_id: userId }).first();
}

export async function systemAccountIds(db: Db | Trx): Promise<Map<string, string>> {
  const rows = await db('accounts').whereNotNull('code').select('id', 'code');
  return new Map(rows.map((r: { id: string; code: string }) => [r.code, r.id]));
}

/** Adds the deltas to the account's running totals; returns the new posted balance (credits − debits). */
export async function addToAccount(
  trx: Trx,
  accountId: string,
  d: { credits?: number; debits?: number; pending?: number; debt?: number },
): Promise<number> {
  const [row] = await trx('accounts')
    .where({ id: accountId })
    .update({
      credits_posted: trx.raw('credits_posted + ?', [d.credits ?? 0]),
      debits_posted: trx.raw('debits_posted + ?', [d.debits ?? 0]),
      debits_pending: trx.raw('debits_pending + ?', [d.pending ?? 0]),
      debt: trx.raw('debt + ?', [d.debt ?? 0]),
    })
    .returning(trx.raw('credits_posted - debits_posted AS balance'));
  return (row as { balance: number }).balance;
}

// ---- transfers ----

export async function findTransfer(db: Db | Trx, id: string): Promise<Transfer | undefined> {
  const row = await db<DbTransferRow>('transfers').where({ id }).first();
  return row ? mapTransfer(row) : undefined;
}

export interface NewTransfer {
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  amount: number;
  kind: TransferKind;
  reason: string | null;
  actor: string;
  reference: Reference | null;
  holdId?: string | null;
  debitBalanceAfter?: number | null;
  creditBalanceAfter?: number | null;
}

export async function insertTransfer(trx: Trx, t: NewTransfer): Promise<Transfer> {
  const [row] = await trx<DbTransferRow>('transfers')
    .insert({
      id: t.id,
      debit_account_id: t.debitAccountId,
      credit_account_id: t.creditAccountId,
      amount: t.amount,
      kind: t.kind,
      reason: t.reason,
      actor: t.actor,
      reference_type: t.reference?.type ?? null,
      reference_id: t.reference?.id ?? null,
      hold_id: t.holdId ?? null,
      debit_balance_after: t.debitBalanceAfter ?? null,
      credit_balance_after: t.creditBalanceAfter ?? null,
    })
    .returning('*');
  return mapTransfer(row as DbTransferRow);
}

export async function insertAllocations(trx: Trx, transferId: string, parts: Array<{ lotId: string; amount: number }>): Promise<void> {
  const rows = parts.filter((p) => p.amount > 0).map((p) => ({ transfer_id: transferId, lot_id: p.lotId, amount: p.amount }));
  if (rows.length > 0) await trx('transfer_allocations').insert(rows);
}

export async function allocationsOf(db: Db | Trx, transferId: string): Promise<Array<{ lotId: string; amount: number }>> {
  const rows = await db('transfer_allocations').where({ transfer_id: transferId }).orderBy('id').select('lot_id', 'amount');
  return rows.map((r: { lot_id: string; amount: number }) => ({ lotId: r.lot_id, amount: r.amount }));
}

/** Clawback transfers of an account whose amount is not fully covered by allocations (= debt), oldest first. */
export async function outstandingClawbacks(trx: Trx, accountId: string): Promise<Array<{ id: string; outstanding: number }>> {
  const rows = await trx.raw(
    `SELECT t.id, t.amount - COALESCE(SUM(a.amount), 0) AS outstanding
       FROM transfers t LEFT JOIN transfer_allocations a ON a.transfer_id = t.id
      WHERE t.debit_account_id = ? AND t.kind = 'refund_clawback'
      GROUP BY t.id, t.amount, t.created_at
     HAVING t.amount - COALESCE(SUM(a.amount), 0) > 0
      ORDER BY t.created_at, t.id`,
    [accountId],
  );
  return (rows.rows as Array<{ id: string; outstanding: string | number }>).map((r) => ({ id: r.id, outstanding: Number(r.outstanding) }));
}

// ---- lots ----

export async function insertLot(
  trx: Trx,
  l: { accountId: string; transferId: string; source: GrantKind; amount: number; expiresAt: Date | null },
): Promise<Lot> {
  const [row] = await trx<DbLotRow>('lots')
    .insert({ account_id: l.accountId, transfer_id: l.transferId, source: l.source, amount: l.amount, remaining: l.amount, expires_at: l.expiresAt })
    .returning('*');
  return mapLot(row as DbLotRow);
}

export async function findLot(db: Db | Trx, id: string): Promise<Lot | undefined> {
  const row = await db<DbLotRow>('lots').where({ id }).first();
  return row ? mapLot(row) : undefined;
}

export async function findLotByTransfer(db: Db | Trx, transferId: string): Promise<Lot | undefined> {
  const row = await db<DbLotRow>('lots').where({ transfer_id: transferId }).first();
  return row ? mapLot(row) : undefined;
}

/**
 * Lots with unheld credits that are spendable at `now`, in spending order: soonest-expiring first
 * (no expiry last), then oldest. The caller holds the account lock.
 */
export async function spendableLots(trx: Trx, accountId: string, now: Date): Promise<Lot[]> {
  const rows = await trx<DbLotRow>('lots')
    .where({ account_id: accountId })
    .whereRaw('remaining > held')
    .where((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
    .orderByRaw('expires_at ASC NULLS LAST, created_at ASC, id ASC');
  return rows.map(mapLot);
}

/** Sum of unheld, unexpired lot credits at `now`. */
export async function freeCredits(db: Db | Trx, accountId: string, now: Date): Promise<number> {
  const row = await db('lots')
    .where({ account_id: accountId })
    .whereRaw('remaining > held')
    .where((q) => q.whereNull('expires_at').orWhere('expires_at', '>', now))
    .sum({ free: db.raw('remaining - held') })
    .first();
  return Number(row?.free ?? 0);
}

export async function changeLot(trx: Trx, lotId: string, d: { remaining?: number; held?: number }): Promise<void> {
  await trx('lots')
    .where({ id: lotId })
    .update({ remaining: trx.raw('remaining + ?', [d.remaining ?? 0]), held: trx.raw('held + ?', [d.held ?? 0]) });
}

export async function openLots(db: Db | Trx, accountId: string): Promise<Lot[]> {
  const rows = await db<DbLotRow>('lots')
    .where({ account_id: accountId })
    .where('remaining', '>', 0)
    .orderByRaw('expires_at ASC NULLS LAST, created_at ASC, id ASC');
  return rows.map(mapLot);
}

/** Accounts that own a lot past its expiry with unheld credits left (for the sweeper). */
export async function accountsWithExpiredLots(db: Db, now: Date, limit: number): Promise<string[]> {
  return db('lots')
    .where('expires_at', '<=', now)
    .whereRaw('remaining > held')
    .distinct('account_id')
    .limit(limit)
    .pluck('account_id');
}

export async function expiredLotsOf(trx: Trx, accountId: string, now: Date): Promise<Lot[]> {
  const rows = await trx<DbLotRow>('lots')
    .where({ account_id: accountId })
    .where('expires_at', '<=', now)
    .whereRaw('remaining > held')
    .orderBy([{ column: 'expires_at' }, { column: 'id' }]);
  return rows.map(mapLot);
}

// ---- holds ----

export async function findHold(db: Db | Trx, id: string, forUpdate = false): Promise<Hold | undefined> {
  const q = db<DbHoldRow>('holds').where({ id });
  const row = await (forUpdate ? q.forUpdate() : q).first();
  return row ? mapHold(row) : undefined;
}

export async function insertHold(
  trx: Trx,
  h: { id: string; accountId: string; amount: number; expiresAt: Date; reason: string | null; actor: string; reference: Reference | null },
): Promise<Hold> {
  const [row] = await trx<DbHoldRow>('holds')
    .insert({
      id: h.id,
      account_id: h.accountId,
      amount: h.amount,
      expires_at: h.expiresAt,
      reason: h.reason,
      actor: h.actor,
      reference_type: h.reference?.type ?? null,
      reference_id: h.reference?.id ?? null,
    })
    .returning('*');
  return mapHold(row as DbHoldRow);
}

export async function insertHoldLots(trx: Trx, holdId: string, parts: Array<{ lotId: string; amount: number }>): Promise<void> {
  await trx('hold_lots').insert(parts.map((p) => ({ hold_id: holdId, lot_id: p.lotId, amount: p.amount })));
}

/** The lots a hold earmarked, in spending order. */
export async function holdLots(trx: Trx, holdId: string): Promise<Array<{ lotId: string; amount: number }>> {
  const rows = await trx('hold_lots as hl')
    .join('lots as l', 'l.id', 'hl.lot_id')
    .where('hl.hold_id', holdId)
    .orderByRaw('l.expires_at ASC NULLS LAST, l.created_at ASC, l.id ASC')
    .select('hl.lot_id', 'hl.amount');
  return rows.map((r: { lot_id: string; amount: number }) => ({ lotId: r.lot_id, amount: r.amount }));
}

export async function resolveHold(
  trx: Trx,
  holdId: string,
  status: Exclude<HoldStatus, 'active'>,
  posted?: { amount: number; transferId: string | null },
): Promise<Hold> {
  const [row] = await trx<DbHoldRow>('holds')
    .where({ id: holdId, status: 'active' })
    .update({
      status,
      resolved_at: trx.fn.now() as unknown as Date,
      posted_amount: posted ? posted.amount : null,
      transfer_id: posted ? posted.transferId : null,
    })
    .returning('*');
  return mapHold(row as DbHoldRow);
}

export async function activeHolds(db: Db | Trx, accountId: string): Promise<Hold[]> {
  const rows = await db<DbHoldRow>('holds').where({ account_id: accountId, status: 'active' }).orderBy('created_at');
  return rows.map(mapHold);
}

export async function dueHolds(db: Db, now: Date, limit: number): Promise<Array<{ id: string; accountId: string }>> {
  const rows = await db('holds').where({ status: 'active' }).where('expires_at', '<=', now).orderBy('expires_at').limit(limit).select('id', 'account_id');
  return rows.map((r: { id: string; account_id: string }) => ({ id: r.id, accountId: r.account_id }));
}

// ---- statements ----

export interface StatementFilters {
  kind?: TransferKind;
  from?: Date;
  to?: Date;
}

/** A user's transfers, newest first, keyset-paginated on (created_at, id). */
export async function statement(
  db: Db | Trx,
  accountId: string,
  filters: StatementFilters,
  limit: number,
  after?: { createdAt: Date; id: string },
): Promise<StatementEntry[]> {
  const q = db<DbTransferRow>('transfers')
    .where((w) => w.where('debit_account_id', accountId).orWhere('credit_account_id', accountId))
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(limit);
  if (filters.kind) q.where('kind', filters.kind);
  if (filters.from) q.where('created_at', '>=', filters.from);
  if (filters.to) q.where('created_at', '<', filters.to);
  if (after) q.whereRaw('(created_at, id) < (?, ?)', [after.createdAt, after.id]);
  const rows = await q;
  return rows.map((r) => {
    const incoming = r.credit_account_id === accountId;
    return {
      id: r.id,
      kind: r.kind,
      amount: incoming ? r.amount : -r.amount,
      balanceAfter: incoming ? r.credit_balance_after : r.debit_balance_after,
      reason: r.reason,
      actor: r.actor,
      reference: ref(r.reference_type, r.reference_id),
      holdId: r.hold_id,
      createdAt: r.created_at,
    };
  });
}
