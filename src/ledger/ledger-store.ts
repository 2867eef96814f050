import type { LockWait } from './group-commit.ts';
import type { Knex } from 'knex';
import { queryNamed, type Db, type Trx } from '../db/database.ts';
import type { GrantKind, Hold, HoldStatus, Lot, Reference, SpendWatch, StatementEntry, Transfer, TransferKind } from './ledger-types.ts';

/** SQL of the ledger. Every function takes the transaction (or db) as its first argument. */

export interface DbAccountRow {
  id: string;
  code: string | null;
  user_id: string | null;
  team_id: string | null;
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

/** The account owned by `ownerId`: a user's or a team's (their uuids never collide). */
export async function findUserAccount(db: Db | Trx, ownerId: string): Promise<DbAccountRow | undefined> {
  return db<DbAccountRow>('accounts').where({ user_id: ownerId }).orWhere({ team_id: ownerId }).first();
}

// ---- lots ----

export async function findLotByTransfer(db: Db | Trx, transferId: string): Promise<Lot | undefined> {
  const row = await db<DbLotRow>('lots').where({ transfer_id: transferId }).first();
  return row ? mapLot(row) : undefined;
}

/** Accounts that own a lot past its expiry with unheld credits left (for the sweeper). */
export async function accountsWithExpiredLots(db: Db, now: Date, limit: number): Promise<string[]> {
  return db('lots')
    .where('expires_at', '<=', now)
    .where('spendable', true)
    .whereNotNull('expires_at')
    .distinct('account_id')
    .limit(limit)
    .pluck('account_id');
}

// ---- holds ----

export async function findHold(db: Db | Trx, id: string, forUpdate = false): Promise<Hold | undefined> {
  const q = db<DbHoldRow>('holds').where({ id });
  const row = await (forUpdate ? q.forUpdate() : q).first();
  return row ? mapHold(row) : undefined;
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

// ---- operations run by the database (migrations/20261130120000_create_ledger_functions.ts) ----

/** One ledger operation as the database functions take it. Amounts are millicredits. */
export type LedgerOp =
  | { op: 'grant'; id: string; userId: string; amount: number; kind: string; expiresAt: Date | null; reason: string | null; actor: string; refType: string | null; refId: string | null }
  | { op: 'reserve'; id: string; userId: string; amount: number; timeoutMs: number; reason: string | null; actor: string; refType: string | null; refId: string | null }
  | { op: 'post'; id: string; amount: number; actor: string; reason: string | null }
  | { op: 'void'; id: string; actor: string; status?: 'voided' | 'expired' }
  | { op: 'debit'; id: string; userId: string; amount: number; kind: string; reason: string | null; actor: string; refType: string | null; refId: string | null }
  | { op: 'clawback'; id: string; lotId: string; amount: number; reason: string | null; actor: string; refType: string | null; refId: string | null };

/**
 * An operation queued for group commit, with the key of its account as the ledger knows it
 * (`user:<owner id>`, or `hold:<id>` for a hold reserved elsewhere): a batch whose operations all
 * carry one key is one account's, and skips the lookup of each operation's account.
 */
export type BatchedOp = LedgerOp & { key?: string };

/**
 * What a ledger function returns: the rows it wrote or found (as JSON, snake_case), or a refusal
 * `{error: 'TL402' | 'TL403' | 'TL404' | 'TL409' | 'TL410' | 'TL413', …details}` (TL403: a policy at the hold, e.g. a spend cap).
 */
export interface OpOutcome {
  error?: string;
  [field: string]: unknown;
}

/** The `watch` of a debit's or post's outcome (absent unless the ledger was created with `watchSpends`). */
export function watchOf(o: OpOutcome): SpendWatch | undefined {
  const w = o.watch as { lowBalance?: unknown; autoRecharge?: unknown } | undefined;
  return w && typeof w.lowBalance === 'boolean' && typeof w.autoRecharge === 'boolean' ? { lowBalance: w.lowBalance, autoRecharge: w.autoRecharge } : undefined;
}

type OpName = LedgerOp['op'];
const OP_SPECS: { [K in OpName]: { fn: string; types: string[]; args: (o: Extract<LedgerOp, { op: K }>, now: Date) => unknown[] } } = {
  grant: {
    fn: 'ledger_grant_op',
    types: ['text', 'uuid', 'bigint', 'text', 'timestamptz', 'text', 'text', 'text', 'text'],
    args: (o) => [o.id, o.userId, o.amount, o.kind, o.expiresAt, o.reason, o.actor, o.refType, o.refId],
  },
  reserve: {
    fn: 'ledger_reserve_op',
    types: ['text', 'uuid', 'bigint', 'timestamptz', 'bigint', 'text', 'text', 'text', 'text'],
    args: (o, now) => [o.id, o.userId, o.amount, now, o.timeoutMs, o.reason, o.actor, o.refType, o.refId],
  },
  post: { fn: 'ledger_post_op', types: ['text', 'bigint', 'text', 'text'], args: (o) => [o.id, o.amount, o.actor, o.reason] },
  void: { fn: 'ledger_void_op', types: ['text', 'text', 'text'], args: (o) => [o.id, o.actor, o.status ?? 'voided'] },
  debit: {
    fn: 'ledger_debit_op',
    types: ['text', 'uuid', 'bigint', 'text', 'timestamptz', 'text', 'text', 'text', 'text'],
    args: (o, now) => [o.id, o.userId, o.amount, o.kind, now, o.reason, o.actor, o.refType, o.refId],
  },
  clawback: {
    fn: 'ledger_clawback_op',
    types: ['text', 'uuid', 'bigint', 'text', 'text', 'text', 'text'],
    args: (o) => [o.id, o.lotId, o.amount, o.reason, o.actor, o.refType, o.refId],
  },
};

/**
 * Spends whose outcome can also say what watches the owner's spends (`watch`: {@link SpendWatch}),
 * in the same round trip (`ledger_watched`, migrations/20261130232000_create_spend_watch.ts), for
 * a ledger created with `watchSpends` (the app's; about 25 µs of PostgreSQL time per spend).
 */
const WATCHED: ReadonlySet<OpName> = new Set(['debit', 'post']);
const watched = (op: OpName, watch: boolean, call: string) => (watch && WATCHED.has(op) ? `ledger_watched(${call})` : call);

function opCall(op: OpName, watch: boolean, placeholder: (i: number) => string): string {
  const spec = OP_SPECS[op];
  return watched(op, watch, `${spec.fn}(${spec.types.map((t, i) => `${placeholder(i)}::${t}`).join(', ')})`);
}
const eachOp = (sql: (op: OpName) => string) => Object.fromEntries((Object.keys(OP_SPECS) as OpName[]).map((op) => [op, sql(op)])) as Record<OpName, string>;
/** Each operation's autocommit statements, without and with the watch: raising, and by value (group commit's single op). */
const AUTOCOMMIT_SQL = [false, true].map((watch) => ({
  raising: eachOp((op) => `SELECT ledger_raise(${opCall(op, watch, (i) => `$${i + 1}`)}) AS r`),
  value: eachOp((op) => `SELECT ${opCall(op, watch, (i) => `$${i + 1}`)} AS r`),
}));
/**
 * Each operation's statement in the caller's transaction: never watched (that transaction may stay
 * open a while, so the checks read after it commits).
 */
const IN_TRX_SQL = eachOp((op) => `SELECT ${opCall(op, false, () => '?')} AS r`);

function argsOf(o: LedgerOp, now: Date): unknown[] {
  return (OP_SPECS[o.op].args as (o: LedgerOp, now: Date) => unknown[])(o, now);
}

type Rows = { rows: Array<Record<string, unknown>> };
interface PgConnection {
  query(q: { name?: string; text: string; values?: unknown[] }): Promise<Rows>;
  /** A simple-protocol query (several statements, no parameters): one result per statement. */
  query(text: string): Promise<Rows | Rows[]>;
  escapeLiteral(value: string): string;
}

/** `o`'s function call with its arguments as SQL literals (for the simple protocol). */
function literalCall(conn: PgConnection, o: LedgerOp, now: Date): string {
  const spec = OP_SPECS[o.op];
  const literal = (v: unknown) => {
    if (v === null || v === undefined) return 'NULL';
    if (v instanceof Date) return conn.escapeLiteral(v.toISOString());
    if (typeof v === 'number') {
      if (!Number.isSafeInteger(v)) throw new Error(`ledger: ${v} is not an integer`);
      return String(v);
    }
    return conn.escapeLiteral(String(v));
  };
  return `${spec.fn}(${argsOf(o, now)
    .map((v, i) => `${literal(v)}::${spec.types[i]}`)
    .join(', ')})`;
}

/** One named statement in autocommit (one round trip, planned once per connection); its `r` column. */
async function named(db: Db, name: string, text: string, values: unknown[]): Promise<unknown> {
  const rows = await queryNamed<{ r: unknown }>(db, name, text, values);
  return rows[0]!.r;
}

/**
 * Applies one operation in its own transaction (autocommit, one round trip). With `raise`, a
 * refusal comes back as a PostgreSQL error with SQLSTATE `TLnnn` and the details as JSON in
 * `detail`; without, as the outcome's `error` field.
 */
export async function applyOp(db: Db, o: LedgerOp, now: Date, options: { raise: boolean; watch?: boolean }): Promise<OpOutcome> {
  const sql = AUTOCOMMIT_SQL[options.watch ? 1 : 0]!;
  const name = `tally_${o.op}_${options.raise ? 'r' : 'v'}${options.watch ? 'w' : ''}`;
  return (await named(db, name, (options.raise ? sql.raising : sql.value)[o.op], argsOf(o, now))) as OpOutcome;
}

/**
 * Opens a transaction on its own connection and applies `o` in it (BEGIN and the statement in one
 * round trip); the caller ends it with `end(true)` (COMMIT) or `end(false)` (ROLLBACK), once. A
 * refusal is returned with the transaction already rolled back. The account row stays locked until
 * the end. With `watch`, `end(true)` also reads what watches the spends of the operation's account
 * ({@link SpendWatch}), in the COMMIT's own round trip, so after the commit: the transaction may
 * have stayed open a while, and the answer must be as fresh as a read after the commit.
 */
export async function applyOpOpen(
  db: Db,
  o: LedgerOp,
  now: Date,
  watch = false,
): Promise<{ outcome: OpOutcome; end(commit: boolean): Promise<SpendWatch | undefined> }> {
  const conn = (await db.client.acquireConnection()) as PgConnection;
  let open = true;
  let account: string | undefined;
  const finish = async (commit: boolean): Promise<SpendWatch | undefined> => {
    if (!open) return undefined;
    open = false;
    try {
      if (!commit) {
        await conn.query({ text: 'ROLLBACK' });
        return undefined;
      }
      if (!account) {
        await conn.query({ text: 'COMMIT' });
        return undefined;
      }
      const results = (await conn.query(`COMMIT; SELECT spend_watch(${conn.escapeLiteral(account)}::uuid) AS w`)) as Rows[];
      return watchOf({ watch: results[1]!.rows[0]!.w });
    } finally {
      await db.client.releaseConnection(conn);
    }
  };
  try {
    // BEGIN and the operation in one round trip (simple protocol, arguments as escaped literals).
    const results = (await conn.query(`BEGIN; SELECT ${literalCall(conn, o, now)} AS r`)) as Rows[];
    const outcome = results[1]!.rows[0]!.r as OpOutcome;
    if (outcome.error) {
      await finish(false);
    } else if (watch && WATCHED.has(o.op)) {
      const t = outcome.transfer as { debit_account_id?: string } | undefined;
      const h = outcome.hold as { account_id?: string } | undefined;
      account = h?.account_id ?? t?.debit_account_id;
    }
    return { outcome, end: finish };
  } catch (err) {
    await finish(false).catch(() => undefined);
    throw err;
  }
}

/** Applies one operation inside the caller's transaction; a refusal is returned, the transaction stays usable. */
export async function applyOpIn(trx: Trx, o: LedgerOp, now: Date): Promise<OpOutcome> {
  const { rows } = await trx.raw(IN_TRX_SQL[o.op], argsOf(o, now) as Knex.RawBinding[]);
  return rows[0].r as OpOutcome;
}

/**
 * Applies operations (grant, reserve, post, void, debit) in ONE transaction, in order, each with
 * its own outcome (a refusal does not affect the others); migration 20261130233000.
 * - `wait: 'until-free'`: the operations are one key's (`BatchedOp.key`) and wait for the account
 *   lock in turn; `'briefly'`: the same, but a lock wait longer than 50 ms fails the call (SQLSTATE
 *   55P03, lock_not_available).
 * - `'never'` (default): nothing waits for a lock: an operation whose account another transaction
 *   holds, or that would create an account, comes back `{deferred: true}`, applied nothing.
 * With `watch`, posts and debits carry `watch` as {@link applyOp}'s do. An unexpected error fails
 * the whole call.
 */
export async function applyBatch(db: Db, ops: BatchedOp[], now: Date, options: { watch?: boolean; wait?: LockWait } = {}): Promise<OpOutcome[]> {
  const payload = ops.map((o) => ({
    ...o,
    expiresAt: 'expiresAt' in o ? (o.expiresAt?.toISOString() ?? null) : undefined,
    watch: options.watch && WATCHED.has(o.op) ? true : undefined,
    wait: options.wait === 'never' ? undefined : options.wait,
  }));
  return (await named(db, 'tally_batch', 'SELECT ledger_batch($1::jsonb, $2::timestamptz) AS r', [JSON.stringify(payload), now])) as OpOutcome[];
}

/**
 * Moves purchased credits between two owned accounts (`ledger_transfer_purchased_op`, migration
 * 20261130180200): the outcome `{transfers, lots, replayed}` or a refusal value (TL402/TL409/TL413).
 */
export async function transferPurchased(
  q: Db | Trx,
  o: { id: string; fromOwnerId: string; toOwnerId: string; amount: number; kind: string; reason: string | null; actor: string; refType: string | null; refId: string | null },
  now: Date,
): Promise<OpOutcome> {
  const { rows } = await q.raw(
    'SELECT ledger_transfer_purchased_op(?, ?::uuid, ?::uuid, ?::bigint, ?, ?::timestamptz, ?, ?, ?, ?) AS r',
    [o.id, o.fromOwnerId, o.toOwnerId, o.amount, o.kind, now, o.reason, o.actor, o.refType, o.refId] as Knex.RawBinding[],
  );
  return rows[0].r as OpOutcome;
}

/** Ends one lot now (`ledger_expire_lot_op`): its unheld remainder expires; returns the millicredits expired. */
export async function expireLot(db: Db | Trx, lotId: string, actor: string, reason: string | null): Promise<number> {
  const r = await db.raw('SELECT ledger_expire_lot_op(?::uuid, ?, ?) AS r', [lotId, actor, reason]);
  return Number(r.rows[0].r);
}

/** Expires the unheld remainder of the account's lots past `now`; returns how many lots. */
export async function expireLotsOf(db: Db, accountId: string, now: Date): Promise<number> {
  return Number(await named(db, 'tally_expire_lots', 'SELECT ledger_expire_lots_op($1::uuid, $2::timestamptz) AS r', [accountId, now]));
}

const TRANSFER_DATES = ['created_at'] as const;
const LOT_DATES = ['expires_at', 'created_at'] as const;
const HOLD_DATES = ['expires_at', 'created_at', 'resolved_at'] as const;

function withDates<T>(row: Record<string, unknown>, fields: readonly string[]): T {
  const out: Record<string, unknown> = { ...row };
  for (const f of fields) out[f] = out[f] == null ? null : new Date(out[f] as string);
  return out as T;
}

/** Maps the JSON rows a ledger function returns to domain objects. */
export const fromJson = {
  transfer: (row: unknown): Transfer => mapTransfer(withDates<DbTransferRow>(row as Record<string, unknown>, TRANSFER_DATES)),
  lot: (row: unknown): Lot => mapLot(withDates<DbLotRow>(row as Record<string, unknown>, LOT_DATES)),
  hold: (row: unknown): Hold => mapHold(withDates<DbHoldRow>(row as Record<string, unknown>, HOLD_DATES)),
};

/**
 * The user's balance in ONE statement (one snapshot): the account's debt and held total, the free
 * credits of unexpired lots at `now`, the open lots in spending order and the active holds, so
 * `held` always equals the sum of the listed holds. Undefined when the user has no account yet.
 */
export async function balanceSnapshot(
  db: Db | Trx,
  userId: string,
  now: Date,
): Promise<{ free: number; debt: number; held: number; lots: Lot[]; holds: Hold[] } | undefined> {
  const { rows } = await db.raw(
    `SELECT a.debt, a.debits_pending,
            COALESCE((SELECT SUM(l.remaining - l.held) FROM lots l
                       WHERE l.account_id = a.id AND l.spendable AND (l.expires_at IS NULL OR l.expires_at > ?)), 0)::bigint AS free,
            COALESCE((SELECT json_agg(l ORDER BY l.expires_at ASC NULLS LAST, l.created_at ASC, l.id ASC)
                        FROM lots l WHERE l.account_id = a.id AND l.open), '[]') AS lots,
            COALESCE((SELECT json_agg(h ORDER BY h.created_at) FROM holds h
                       WHERE h.account_id = a.id AND h.status = 'active'), '[]') AS holds
       FROM accounts a WHERE a.user_id = ? OR a.team_id = ?`,
    [now, userId, userId],
  );
  const r = rows[0] as { debt: number; debits_pending: number; free: number; lots: unknown[]; holds: unknown[] } | undefined;
  if (!r) return undefined;
  return { free: r.free, debt: r.debt, held: r.debits_pending, lots: r.lots.map(fromJson.lot), holds: r.holds.map(fromJson.hold) };
}

/** Available millicredits (free lot credits at `now` − debt) in one statement; 0 without an account. */
export async function availableOf(db: Db | Trx, userId: string, now: Date): Promise<number> {
  const sql = `SELECT (COALESCE((SELECT SUM(l.remaining - l.held) FROM lots l
                                 WHERE l.account_id = a.id AND l.spendable AND (l.expires_at IS NULL OR l.expires_at > $1)), 0) - a.debt)::bigint AS r
                 FROM accounts a WHERE a.user_id = $2 OR a.team_id = $2`;
  if (!(db as Trx).isTransaction) {
    const rows = await queryNamed<{ r: number }>(db as Db, 'tally_available', sql, [now, userId]);
    return rows[0]?.r ?? 0;
  }
  const { rows } = await db.raw(sql.replace('$1', '?').replace(/\$2/g, '?'), [now, userId, userId]);
  return (rows[0] as { r: number } | undefined)?.r ?? 0;
}
