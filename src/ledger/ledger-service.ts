import { paginate, timeKeyCursor } from '../pagination.ts';
import type { Db, Trx } from '../db/database.ts';
import { assertMillicredits } from './credits.ts';
import { createGroupCommit } from './group-commit.ts';
import {
  BalanceLimitError,
  HoldNotFoundError,
  HoldStateError,
  IdempotencyConflictError,
  InsufficientCreditsError,
  SpendCapExceededError,
  type SpendCapKind,
  LotNotFoundError,
} from './ledger-errors.ts';
import * as store from './ledger-store.ts';
import {
  type Balance,
  type DebitKind,
  type GrantKind,
  type Hold,
  type Lot,
  type OwnedTransferKind,
  type Page,
  type Reference,
  type SpendWatch,
  type StatementEntry,
  type Transfer,
} from './ledger-types.ts';

/** Fields every ledger operation records (DESIGN.md invariant 6: kind, actor and reference). */
interface Attribution {
  /** Who did it: `user:<id>`, `admin:<id>`, `system`, `stripe`. */
  actor: string;
  reason?: string | null;
  reference?: Reference | null;
}

export interface GrantInput extends Attribution {
  /** Transfer id; doubles as the idempotency key. */
  transferId: string;
  /** The account owner: a user's id, or a team's id for its pool (src/teams). */
  userId: string;
  millicredits: number;
  kind: GrantKind;
  /** When the lot's unspent credits expire; null/undefined = never. */
  expiresAt?: Date | null;
}

export interface ReserveInput extends Attribution {
  /** Hold id; doubles as the idempotency key. */
  holdId: string;
  /** The account owner: a user's id, or a team's id for its pool (src/teams). */
  userId: string;
  millicredits: number;
  /** How long the hold lives before the sweeper voids it (ms). */
  timeoutMs: number;
}

export interface PostInput {
  holdId: string;
  /** The actual cost, 0 ≤ millicredits ≤ held. */
  millicredits: number;
  actor: string;
  reason?: string | null;
}

export interface DebitInput extends Attribution {
  transferId: string;
  /** The account owner: a user's id, or a team's id for its pool (src/teams). */
  userId: string;
  millicredits: number;
  kind: DebitKind;
}

export interface TransferPurchasedInput extends Attribution {
  /** Idempotency key; the transfers are `<transferId>:1`, `<transferId>:2`, … (one per lot drawn). */
  transferId: string;
  /** The account owner the credits leave (a user's id). */
  fromOwnerId: string;
  /** The account owner they go to: a team's id (its pool) or another user's id. */
  toOwnerId: string;
  millicredits: number;
  kind: OwnedTransferKind;
}

export interface TransferPurchasedResult {
  /** One transfer per purchased lot drawn, in the order drawn (soonest expiry first). */
  transfers: Transfer[];
  /** The recipient's new lots, one per transfer, each with the expiry of the lot it came from. */
  lots: Lot[];
  replayed: boolean;
}

export interface ClawbackInput extends Attribution {
  transferId: string;
  lotId: string;
  millicredits: number;
}

export interface GrantResult {
  transfer: Transfer;
  lot: Lot;
  /** True when this id had been applied before and nothing changed now. */
  replayed: boolean;
}

export interface ClawbackResult {
  transfer: Transfer;
  /** Taken back from the lot. */
  recovered: number;
  /** The part already spent or held, recorded as debt. */
  debt: number;
  replayed: boolean;
}

export interface LedgerOptions {
  /** The time the ledger decides expiry by. Default: the system clock. */
  clock?: () => Date;
  /**
   * Group commit (src/ledger/group-commit.ts): operations that arrive while one of their lane is in
   * flight are applied together in one transaction, each with its own outcome. Applies to grant,
   * reserve, post, void and debit called without an outer transaction. Default true.
   */
  groupCommit?: boolean;
  /**
   * How many group-commit lanes (queues with one transaction in flight each) the accounts share;
   * an account keeps its lane while it has operations queued or in flight. Default 2: on the 2-core
   * machine of the bench, 1 lane leaves a core idle and 3 or 4 make smaller batches (README,
   * "Scaling out").
   */
  groupCommitLanes?: number;
  /**
   * Debits and posts also return `watch` ({@link SpendWatch}: whether low-balance alerts or
   * auto-recharge watch the owner's spends), read in the operation's own round trip, so the
   * after-spend checks of the app's ledger wrappers skip their own reads when nothing watches
   * (issue 11). Costs about 25 µs of PostgreSQL time per spend. Default false; the composition
   * root turns it on (src/compose.ts).
   */
  watchSpends?: boolean;
}

export type Ledger = ReturnType<typeof createLedger>;

/** Maps a refusal returned (or raised as SQLSTATE `TLnnn`) by a ledger function to its error class. */
function refusal(o: store.OpOutcome): Error {
  switch (o.error) {
    case 'TL402':
      return new InsufficientCreditsError(o.required as number, o.available as number);
    case 'TL404':
      return o.what === 'lot' ? new LotNotFoundError() : new HoldNotFoundError();
    case 'TL409':
      return new IdempotencyConflictError(o.what as string, o.id as string);
    case 'TL410':
      return new HoldStateError(o.id as string, o.status as string, (o.message as string | undefined) ?? undefined);
    case 'TL413':
      return new BalanceLimitError(o.credited as number, o.amount as number);
    case 'TL403':
      return new SpendCapExceededError(
        o.cap as SpendCapKind,
        Number(o.limit),
        Number(o.spent),
        Number(o.held),
        o.resetsAt ? new Date(o.resetsAt as string) : null,
        Number(o.amount),
      );
    default:
      return new Error(`ledger: unknown refusal ${JSON.stringify(o)}`);
  }
}

/** The outcome, or its refusal thrown as the domain error. */
function accepted(o: store.OpOutcome): store.OpOutcome {
  if (o.error) throw refusal(o);
  return o;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs an autocommit statement again on deadlock / serialization failure (40P01 / 40001), backing
 * off 2^attempt × 5 ms; a raised refusal (SQLSTATE `TLnnn`, details in `detail`) becomes its error.
 */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const e = err as { code?: string; detail?: string };
      if (typeof e.code === 'string' && e.code.startsWith('TL') && e.detail) throw refusal(JSON.parse(e.detail) as store.OpOutcome);
      if ((e.code === '40P01' || e.code === '40001') && attempt < 5) {
        await sleep(2 ** attempt * 5);
        continue;
      }
      throw err;
    }
  }
}

/** Where a hold's operations queue for group commit: its user, when this process reserved it. */
const MAX_REMEMBERED_HOLDS = 100_000;

/** The parameters of the `debit` ledger function for a {@link DebitInput} (millicredits). */
function debitOp(input: DebitInput) {
  return {
    op: 'debit' as const,
    id: input.transferId,
    userId: input.userId,
    amount: input.millicredits,
    kind: input.kind,
    reason: input.reason ?? null,
    actor: input.actor,
    refType: input.reference?.type ?? null,
    refId: input.reference?.id ?? null,
  };
}

/**
 * The double-entry credit ledger (DESIGN.md, "The ledger"): grants create lots, holds reserve
 * credits in two phases, spends draw from lots soonest-expiring first then oldest, and every
 * movement is an immutable transfer between two accounts. All amounts are integer millicredits.
 *
 * Each operation is one PL/pgSQL function (migrations/20261130120000_create_ledger_functions.ts),
 * so one round trip: it first locks the user's account row, so operations on one account are
 * serialized and available credit can never be overspent, whatever the concurrency. Without an
 * outer transaction the call is its own transaction (autocommit, a named prepared statement), and
 * with group commit on, operations that arrive while others are in flight share one transaction
 * (several accounts' too: src/ledger/group-commit.ts). Every
 * operation takes an optional outer transaction to join (e.g. fulfillment + payment row); a
 * refusal then leaves that transaction usable.
 *
 * Lots that expire while held: credits a hold earmarked before the lot's expiry stay reserved for
 * that hold and can still be posted; what the hold releases from an expired lot (void, or a post
 * below the held amount) is expired by the next sweep.
 */
export function createLedger(db: Db, options: LedgerOptions = {}) {
  const clock = options.clock ?? (() => new Date());
  const watch = options.watchSpends === true;
  const holdUsers = new Map<string, string>();
  const group =
    options.groupCommit === false
      ? undefined
      : createGroupCommit<store.BatchedOp, store.OpOutcome>({
          applyOne: (op) => retrying(() => store.applyOp(db, op, clock(), { raise: false, watch })),
          applyMany: (ops, wait) => store.applyBatch(db, ops, clock(), { watch, wait }),
          isDeferred: (o) => o.deferred === true,
          lanes: options.groupCommitLanes ?? 2,
        });

  function rememberHold(holdId: string, userId: string) {
    if (holdUsers.size >= MAX_REMEMBERED_HOLDS) holdUsers.delete(holdUsers.keys().next().value!);
    holdUsers.set(holdId, userId);
  }

  /** Applies `op`: in `trx`, or batched under `key` (group commit), or alone in autocommit. */
  async function apply(op: store.LedgerOp, trx: Trx | undefined, key: string | undefined): Promise<store.OpOutcome> {
    if (trx) return accepted(await store.applyOpIn(trx, op, clock()));
    if (group && key) return accepted(await group.submit(key, { ...op, key }));
    return retrying(() => store.applyOp(db, op, clock(), { raise: true, watch }));
  }

  const holdKey = (holdId: string) => {
    const user = holdUsers.get(holdId);
    return user ? `user:${user}` : `hold:${holdId}`;
  };

  const ledger = {
    /**
     * Grants credits: a transfer from the kind's system account (purchase → sales, bonus →
     * promotions, …) to the user, and a lot of `millicredits` expiring at `expiresAt`. An
     * outstanding refund debt is repaid from the new lot first.
     * Replaying `transferId` returns the first result; reusing it with other parameters throws
     * {@link IdempotencyConflictError} (409), also when the same id is sent for two users at once.
     * A grant that would take the account's total credited past 2^53 − 1 millicredits throws
     * {@link BalanceLimitError} (409) and grants nothing.
     */
    async grant(input: GrantInput, trx?: Trx): Promise<GrantResult> {
      assertMillicredits(input.millicredits);
      const o = await apply(
        {
          op: 'grant',
          id: input.transferId,
          userId: input.userId,
          amount: input.millicredits,
          kind: input.kind,
          expiresAt: input.expiresAt ?? null,
          reason: input.reason ?? null,
          actor: input.actor,
          refType: input.reference?.type ?? null,
          refId: input.reference?.id ?? null,
        },
        trx,
        `user:${input.userId}`,
      );
      return { transfer: store.fromJson.transfer(o.transfer), lot: store.fromJson.lot(o.lot), replayed: o.replayed as boolean };
    },

    /**
     * Reserves `millicredits` for `timeoutMs` (first phase of a two-phase transfer): earmarks
     * credits of specific lots, in spending order. Throws {@link InsufficientCreditsError} (402) and
     * holds nothing when available < amount. Replaying `holdId` returns the hold as it is now (even
     * if since posted or voided); other parameters → {@link IdempotencyConflictError}.
     */
    async reserve(input: ReserveInput, trx?: Trx): Promise<Hold> {
      assertMillicredits(input.millicredits);
      const o = await apply(
        {
          op: 'reserve',
          id: input.holdId,
          userId: input.userId,
          amount: input.millicredits,
          timeoutMs: input.timeoutMs,
          reason: input.reason ?? null,
          actor: input.actor,
          refType: input.reference?.type ?? null,
          refId: input.reference?.id ?? null,
        },
        trx,
        `user:${input.userId}`,
      );
      const hold = store.fromJson.hold(o.hold);
      if (hold.status === 'active') rememberHold(hold.id, input.userId);
      return hold;
    },

    /**
     * Posts a hold (second phase): spends `millicredits` (≤ held) as a `usage` transfer drawn from
     * the hold's lots, and releases the rest. Posting 0 spends nothing and writes no transfer.
     * Idempotent: posting again with the same amount returns the posted hold; a different amount,
     * or a voided/expired hold → {@link HoldStateError} (409). Unknown hold → {@link HoldNotFoundError}.
     */
    async post(input: PostInput, trx?: Trx): Promise<{ hold: Hold; transfer: Transfer | null; watch?: SpendWatch }> {
      assertMillicredits(input.millicredits, { allowZero: true });
      const o = await apply(
        { op: 'post', id: input.holdId, amount: input.millicredits, actor: input.actor, reason: input.reason ?? null },
        trx,
        holdKey(input.holdId),
      );
      holdUsers.delete(input.holdId);
      return { hold: store.fromJson.hold(o.hold), transfer: o.transfer ? store.fromJson.transfer(o.transfer) : null, watch: store.watchOf(o) };
    },

    /**
     * Voids a hold: releases everything it reserved; the user pays nothing. Idempotent for a
     * voided or expired hold; a posted hold → {@link HoldStateError} (409).
     */
    async void(input: { holdId: string; actor: string }, trx?: Trx, status: 'voided' | 'expired' = 'voided'): Promise<Hold> {
      const o = await apply({ op: 'void', id: input.holdId, actor: input.actor, status }, trx, status === 'voided' ? holdKey(input.holdId) : undefined);
      holdUsers.delete(input.holdId);
      return store.fromJson.hold(o.hold);
    },

    /**
     * Spends `millicredits` at once (no hold): a `usage` (or negative `adjustment`) transfer drawn
     * from lots in spending order. {@link InsufficientCreditsError} (402) when available < amount.
     * Replaying `transferId` returns the first transfer; other parameters → 409.
     */
    async debit(input: DebitInput, trx?: Trx): Promise<{ transfer: Transfer; replayed: boolean; watch?: SpendWatch }> {
      assertMillicredits(input.millicredits);
      const o = await apply(
        debitOp(input),
        trx,
        `user:${input.userId}`,
      );
      return { transfer: store.fromJson.transfer(o.transfer), replayed: o.replayed as boolean, watch: store.watchOf(o) };
    },

    /**
     * A debit (as {@link debit}: same checks, refusals and idempotency) in a transaction left open
     * for the caller, who ends it with `commit()` (the charge stands) or `rollback()` (nothing was
     * charged): a priced request that knows its price up front pays in ONE commit, with the
     * guarantees of a hold (credits checked and taken under the account lock before the work, given
     * back by the rollback if the work fails). The account row stays locked until the end, so keep
     * the work between short, and never call the ledger from it, for this account or any other: a
     * group-commit lane may be waiting for this account's lock, and the call could queue behind it.
     * A replayed `transferId` comes back with `replayed: true` and nothing to commit. With
     * `watchSpends`, `commit()` resolves to the {@link SpendWatch} read right after the COMMIT, in
     * its round trip (else undefined).
     */
    async openDebit(input: DebitInput): Promise<{ transfer: Transfer; replayed: boolean; commit(): Promise<SpendWatch | undefined>; rollback(): Promise<void> }> {
      assertMillicredits(input.millicredits);
      const { outcome, end } = await store.applyOpOpen(db, debitOp(input), clock(), watch);
      accepted(outcome);
      return {
        transfer: store.fromJson.transfer(outcome.transfer),
        replayed: outcome.replayed as boolean,
        commit: () => end(true),
        rollback: async () => {
          await end(false);
        },
      };
    },

    /**
     * Takes back `millicredits` of a specific lot (e.g. the refunded share of a purchase): a
     * `refund_clawback` transfer to the refunds account. What the lot no longer has free (spent or
     * held) becomes debt, which blocks spending until the next grant repays it.
     * Replaying `transferId` returns the first result; other parameters → 409. Unknown lot →
     * {@link LotNotFoundError}; more than the lot's amount → {@link HoldStateError} (409).
     */
    async clawback(input: ClawbackInput, trx?: Trx): Promise<ClawbackResult> {
      assertMillicredits(input.millicredits);
      const o = await apply(
        {
          op: 'clawback',
          id: input.transferId,
          lotId: input.lotId,
          amount: input.millicredits,
          reason: input.reason ?? null,
          actor: input.actor,
          refType: input.reference?.type ?? null,
          refId: input.reference?.id ?? null,
        },
        trx,
        undefined,
      );
      return { transfer: store.fromJson.transfer(o.transfer), recovered: o.recovered as number, debt: o.debt as number, replayed: o.replayed as boolean };
    },

    /**
     * Sweeper: moves the unheld remainder of every lot past its expiry (at `now`) to the `expired`
     * account, one `expiry` transfer per lot (one round trip per account). Returns how many lots
     * were expired. Safe to run from several processes at once (each account is locked; a lot is
     * expired at most once per remainder).
     */
    async expireLots(now: Date = clock(), batch = 500): Promise<number> {
      let count = 0;
      for (;;) {
        const accounts = await store.accountsWithExpiredLots(db, now, batch);
        if (accounts.length === 0) return count;
        for (const accountId of accounts) count += await retrying(() => store.expireLotsOf(db, accountId, now));
        if (accounts.length < batch) return count;
      }
    },

    /**
     * Ends one lot now, ahead of its `expires_at`: its unheld remainder goes to the `expired` account
     * in one `expiry` transfer (the same transfer the sweeper would make; what holds keep stays
     * reserved and expires once released). For grants whose period ends by an event rather than by
     * the clock, e.g. a subscription period ended by its renewal invoice (Stripe test clocks run
     * ahead of real time). Returns the millicredits expired now (0 when nothing was left).
     * @throws LotNotFoundError for an unknown lot.
     */
    async expireLot(input: { lotId: string; actor: string; reason?: string | null }, trx?: Trx): Promise<{ expired: number }> {
      try {
        return { expired: await store.expireLot(trx ?? db, input.lotId, input.actor, input.reason ?? null) };
      } catch (err) {
        if ((err as { code?: string }).code === 'TL404') throw new LotNotFoundError();
        throw err;
      }
    },

    /**
     * Moves `millicredits` of PURCHASED credits from one owned account to another — a member's
     * contribution to a team's pool (issue 16), a gift (issue 17) — in one call under both
     * accounts' locks (`ledger_transfer_purchased_op`, migrations/20261130180200). Only `purchase`
     * lots are drawn (never bonus, sign-up, promo, trial or subscription credits), soonest expiry
     * first; each part arrives as a lot of source `kind` with the expiry of the lot it came from.
     * Replaying `transferId` returns the first result.
     * @throws {InsufficientCreditsError} 402 when the sender's unheld purchased credits (capped by
     *   its available balance) are short; `available` is what could be moved
     * @throws {IdempotencyConflictError} 409 when `transferId` was used with other parameters
     * @throws {BalanceLimitError} 409 past the recipient's limit
     */
    async transferPurchased(input: TransferPurchasedInput, trx?: Trx): Promise<TransferPurchasedResult> {
      assertMillicredits(input.millicredits);
      if (input.fromOwnerId === input.toOwnerId) throw new Error('ledger: a transfer needs two different accounts');
      const op = {
        id: input.transferId,
        fromOwnerId: input.fromOwnerId,
        toOwnerId: input.toOwnerId,
        amount: input.millicredits,
        kind: input.kind,
        reason: input.reason ?? null,
        actor: input.actor,
        refType: input.reference?.type ?? null,
        refId: input.reference?.id ?? null,
      };
      const o = accepted(trx ? await store.transferPurchased(trx, op, clock()) : await retrying(() => store.transferPurchased(db, op, clock())));
      return {
        transfers: (o.transfers as unknown[]).map(store.fromJson.transfer),
        lots: (o.lots as unknown[]).map(store.fromJson.lot),
        replayed: o.replayed as boolean,
      };
    },

    /** Sweeper: voids (status `expired`) every active hold past its timeout at `now`. Returns the count. */
    async expireHolds(now: Date = clock(), batch = 500): Promise<number> {
      let count = 0;
      for (;;) {
        const due = await store.dueHolds(db, now, batch);
        for (const h of due) {
          const hold = await ledger.void({ holdId: h.id, actor: 'system' }, undefined, 'expired');
          if (hold.status === 'expired') count++;
        }
        if (due.length < batch) return count;
      }
    },

    /**
     * The user's balance in millicredits: `{available, held, debt, lots (open, spending order),
     * holds (active)}`. ONE statement, so one snapshot: `held` always equals the sum of the listed
     * holds, even while other requests reserve and post. Never reads the history.
     */
    async getBalance(userId: string, trx?: Trx): Promise<Balance> {
      const snap = await store.balanceSnapshot(trx ?? db, userId, clock());
      if (!snap) return { available: 0, held: 0, debt: 0, lots: [], holds: [] };
      return { available: snap.free - snap.debt, held: snap.held, debt: snap.debt, lots: snap.lots, holds: snap.holds };
    },

    /** Available millicredits only (as {@link getBalance}'s `available`), in one light query: for page headers. */
    async getAvailable(userId: string, trx?: Trx): Promise<number> {
      return store.availableOf(trx ?? db, userId, clock());
    },

    /**
     * The user's transfers, newest first, with the balance after each. `limit` 1–500 (default 50);
     * `cursor` is the previous page's `nextCursor`.
     */
    async listTransfers(
      userId: string,
      filters: store.StatementFilters = {},
      page: { limit?: number; cursor?: string | null } = {},
    ): Promise<Page<StatementEntry>> {
      const account = await store.findUserAccount(db, userId);
      if (!account) return { items: [], nextCursor: null };
      return paginate({ limit: page.limit, max: 500, cursor: page.cursor, codec: timeKeyCursor }, (n, after) =>
        store.statement(db, account.id, filters, n, after),
      );
    },

    /** The hold with this id, or undefined. */
    async findHold(holdId: string, trx?: Trx): Promise<Hold | undefined> {
      return store.findHold(trx ?? db, holdId);
    },

    /** The lot created by the grant transfer `transferId`, or undefined. */
    async findLotByTransfer(transferId: string, trx?: Trx): Promise<Lot | undefined> {
      return store.findLotByTransfer(trx ?? db, transferId);
    },
  };
  return ledger;
}

export { decodeCursor, encodeCursor, InvalidCursorError } from '../pagination.ts';
