import { paginate, timeKeyCursor } from '../pagination.ts';
import { inTransaction, isUniqueViolation, type Db, type Trx } from '../db/database.ts';
import { assertMillicredits } from './credits.ts';
import {
  HoldNotFoundError,
  HoldStateError,
  IdempotencyConflictError,
  InsufficientCreditsError,
  LotNotFoundError,
} from './ledger-errors.ts';
import * as store from './ledger-store.ts';
import {
  COUNTERPARTY,
  type Balance,
  type DebitKind,
  type GrantKind,
  type Hold,
  type Lot,
  type Page,
  type Reference,
  type StatementEntry,
  type Transfer,
  type TransferKind,
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
  userId: string;
  millicredits: number;
  kind: GrantKind;
  /** When the lot's unspent credits expire; null/undefined = never. */
  expiresAt?: Date | null;
}

export interface ReserveInput extends Attribution {
  /** Hold id; doubles as the idempotency key. */
  holdId: string;
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
  userId: string;
  millicredits: number;
  kind: DebitKind;
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
}

export type Ledger = ReturnType<typeof createLedger>;

/**
 * The double-entry credit ledger (DESIGN.md, "The ledger"): grants create lots, holds reserve
 * credits in two phases, spends draw from lots soonest-expiring first then oldest, and every
 * movement is an immutable transfer between two accounts. All amounts are integer millicredits.
 *
 * Each operation is one transaction that first locks the user's account row, so operations on one
 * account are serialized and available credit can never be overspent, whatever the concurrency.
 * Every operation takes an optional outer transaction to join (e.g. fulfillment + payment row).
 *
 * Lots that expire while held: credits a hold earmarked before the lot's expiry stay reserved for
 * that hold and can still be posted; what the hold releases from an expired lot (void, or a post
 * below the held amount) is expired by the next sweep.
 */
export function createLedger(db: Db, options: LedgerOptions = {}) {
  const clock = options.clock ?? (() => new Date());
  let systemIds: Map<string, string> | undefined;

  async function counterparty(trx: Trx, kind: TransferKind): Promise<string> {
    systemIds ??= await store.systemAccountIds(trx);
    const id = systemIds.get(COUNTERPARTY[kind]);
    if (!id) throw new Error(`system account ${COUNTERPARTY[kind]} is missing`);
    return id;
  }

  /**
   * Runs one ledger operation. A unique violation on a transfer or hold id means a concurrent
   * request with the same id won the race on another account's lock: run again, so the replay /
   * conflict check sees the committed row.
   */
  async function run<T>(trx: Trx | undefined, fn: (trx: Trx) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await inTransaction(trx ?? db, fn);
      } catch (err) {
        if (!trx && attempt < 2 && (isUniqueViolation(err, 'transfers_pkey') || isUniqueViolation(err, 'holds_pkey'))) continue;
        throw err;
      }
    }
  }

  /**
   * The account's spendable lots at the ledger's clock, in spending order, and what they allow:
   * their unheld credits minus debt. The caller holds the account lock.
   */
  async function spendable(trx: Trx, account: store.DbAccountRow): Promise<{ lots: Lot[]; available: number }> {
    const lots = await store.spendableLots(trx, account.id, clock());
    return { lots, available: lots.reduce((sum, l) => sum + l.remaining - l.held, 0) - account.debt };
  }

  /** Draws `amount` from `lots` (spending order), holding or spending it; the caller checked it's there. */
  async function drawFromLots(trx: Trx, lots: Lot[], amount: number, hold: boolean) {
    const parts: Array<{ lotId: string; amount: number }> = [];
    let left = amount;
    for (const lot of lots) {
      if (left === 0) break;
      const take = Math.min(left, lot.remaining - lot.held);
      await store.changeLot(trx, lot.id, hold ? { held: take } : { remaining: -take });
      parts.push({ lotId: lot.id, amount: take });
      left -= take;
    }
    if (left !== 0) throw new Error('ledger: lots do not cover a checked amount');
    return parts;
  }

  function sameAttribution(t: Transfer, a: { reference?: Reference | null }) {
    return (t.reference?.type ?? null) === (a.reference?.type ?? null) && (t.reference?.id ?? null) === (a.reference?.id ?? null);
  }

  const ledger = {
    /**
     * Grants credits: a transfer from the kind's system account (purchase → sales, bonus →
     * promotions, …) to the user, and a lot of `millicredits` expiring at `expiresAt`. An
     * outstanding refund debt is repaid from the new lot first.
     * Replaying `transferId` returns the first result; reusing it with other parameters throws
     * {@link IdempotencyConflictError} (409).
     */
    async grant(input: GrantInput, trx?: Trx): Promise<GrantResult> {
      assertMillicredits(input.millicredits);
      return run(trx, async (t) => {
        const account = await store.lockUserAccount(t, input.userId);
        const existing = await store.findTransfer(t, input.transferId);
        if (existing) {
          const lot = await store.findLotByTransfer(t, existing.id);
          const expires = input.expiresAt?.getTime() ?? null;
          if (
            !lot ||
            existing.kind !== input.kind ||
            existing.amount !== input.millicredits ||
            existing.creditAccountId !== account.id ||
            (lot.expiresAt?.getTime() ?? null) !== expires ||
            !sameAttribution(existing, input)
          ) {
            throw new IdempotencyConflictError('Transfer', input.transferId);
          }
          return { transfer: existing, lot, replayed: true };
        }
        const balanceAfter = await store.addToAccount(t, account.id, { credits: input.millicredits });
        const transfer = await store.insertTransfer(t, {
          id: input.transferId,
          debitAccountId: await counterparty(t, input.kind),
          creditAccountId: account.id,
          amount: input.millicredits,
          kind: input.kind,
          reason: input.reason ?? null,
          actor: input.actor,
          reference: input.reference ?? null,
          creditBalanceAfter: balanceAfter,
        });
        let lot = await store.insertLot(t, {
          accountId: account.id,
          transferId: transfer.id,
          source: input.kind,
          amount: input.millicredits,
          expiresAt: input.expiresAt ?? null,
        });
        if (account.debt > 0) {
          // Repay refund debt from the new lot: the clawback transfer already moved the credits,
          // so this only records which lot finally covered it (balance unchanged).
          let repay = Math.min(account.debt, lot.amount);
          await store.changeLot(t, lot.id, { remaining: -repay });
          await store.addToAccount(t, account.id, { debt: -repay });
          for (const c of await store.outstandingClawbacks(t, account.id)) {
            if (repay === 0) break;
            const part = Math.min(repay, c.outstanding);
            await store.insertAllocations(t, c.id, [{ lotId: lot.id, amount: part }]);
            repay -= part;
          }
          lot = (await store.findLot(t, lot.id))!;
        }
        return { transfer, lot, replayed: false };
      });
    },

    /**
     * Reserves `millicredits` for `timeoutMs` (first phase of a two-phase transfer): earmarks
     * credits of specific lots, in spending order. Throws {@link InsufficientCreditsError} (402) and
     * holds nothing when available < amount. Replaying `holdId` returns the hold as it is now (even
     * if since posted or voided); other parameters → {@link IdempotencyConflictError}.
     */
    async reserve(input: ReserveInput, trx?: Trx): Promise<Hold> {
      assertMillicredits(input.millicredits);
      return run(trx, async (t) => {
        const account = await store.lockUserAccount(t, input.userId);
        const existing = await store.findHold(t, input.holdId);
        if (existing) {
          if (existing.accountId !== account.id || existing.amount !== input.millicredits) {
            throw new IdempotencyConflictError('Hold', input.holdId);
          }
          return existing;
        }
        const { lots, available: have } = await spendable(t, account);
        if (have < input.millicredits) throw new InsufficientCreditsError(input.millicredits, have);
        const hold = await store.insertHold(t, {
          id: input.holdId,
          accountId: account.id,
          amount: input.millicredits,
          expiresAt: new Date(clock().getTime() + input.timeoutMs),
          reason: input.reason ?? null,
          actor: input.actor,
          reference: input.reference ?? null,
        });
        await store.insertHoldLots(t, hold.id, await drawFromLots(t, lots, input.millicredits, true));
        await store.addToAccount(t, account.id, { pending: input.millicredits });
        return hold;
      });
    },

    /**
     * Posts a hold (second phase): spends `millicredits` (≤ held) as a `usage` transfer drawn from
     * the hold's lots, and releases the rest. Posting 0 spends nothing and writes no transfer.
     * Idempotent: posting again with the same amount returns the posted hold; a different amount,
     * or a voided/expired hold → {@link HoldStateError} (409). Unknown hold → {@link HoldNotFoundError}.
     */
    async post(input: PostInput, trx?: Trx): Promise<{ hold: Hold; transfer: Transfer | null }> {
      assertMillicredits(input.millicredits, { allowZero: true });
      return run(trx, async (t) => {
        // The account lock serializes every change to its holds, so the hold is read after it.
        const account = await store.lockAccountOfHold(t, input.holdId);
        if (!account) throw new HoldNotFoundError();
        const hold = (await store.findHold(t, input.holdId))!;
        if (hold.status === 'posted') {
          if (hold.postedAmount !== input.millicredits) {
            throw new HoldStateError(hold.id, hold.status, `Hold ${hold.id} was already posted with a different amount.`);
          }
          return { hold, transfer: hold.transferId ? ((await store.findTransfer(t, hold.transferId)) ?? null) : null };
        }
        if (hold.status !== 'active') throw new HoldStateError(hold.id, hold.status);
        if (input.millicredits > hold.amount) {
          throw new HoldStateError(hold.id, hold.status, `Cannot post ${input.millicredits} millicredits: the hold is for ${hold.amount}.`);
        }
        let left = input.millicredits;
        const parts: Array<{ lotId: string; amount: number }> = [];
        for (const hl of await store.holdLots(t, hold.id)) {
          const take = Math.min(left, hl.amount);
          await store.changeLot(t, hl.lotId, { held: -hl.amount, remaining: -take });
          if (take > 0) parts.push({ lotId: hl.lotId, amount: take });
          left -= take;
        }
        let transfer: Transfer | null = null;
        if (input.millicredits > 0) {
          const balanceAfter = await store.addToAccount(t, account.id, { debits: input.millicredits, pending: -hold.amount });
          transfer = await store.insertTransfer(t, {
            id: `post:${hold.id}`,
            debitAccountId: account.id,
            creditAccountId: await counterparty(t, 'usage'),
            amount: input.millicredits,
            kind: 'usage',
            reason: input.reason ?? hold.reason,
            actor: input.actor,
            reference: hold.reference,
            holdId: hold.id,
            debitBalanceAfter: balanceAfter,
          });
          await store.insertAllocations(t, transfer.id, parts);
        } else {
          await store.addToAccount(t, account.id, { pending: -hold.amount });
        }
        const posted = await store.resolveHold(t, hold.id, 'posted', { amount: input.millicredits, transferId: transfer?.id ?? null });
        return { hold: posted, transfer };
      });
    },

    /**
     * Voids a hold: releases everything it reserved; the user pays nothing. Idempotent for a
     * voided or expired hold; a posted hold → {@link HoldStateError} (409).
     */
    async void(input: { holdId: string; actor: string }, trx?: Trx, status: 'voided' | 'expired' = 'voided'): Promise<Hold> {
      return run(trx, async (t) => {
        // The account lock serializes every change to its holds, so the hold is read after it.
        const account = await store.lockAccountOfHold(t, input.holdId);
        if (!account) throw new HoldNotFoundError();
        const hold = (await store.findHold(t, input.holdId))!;
        if (hold.status === 'voided' || hold.status === 'expired') return hold;
        if (hold.status === 'posted') throw new HoldStateError(hold.id, hold.status);
        for (const hl of await store.holdLots(t, hold.id)) await store.changeLot(t, hl.lotId, { held: -hl.amount });
        await store.addToAccount(t, account.id, { pending: -hold.amount });
        return store.resolveHold(t, hold.id, status);
      });
    },

    /**
     * Spends `millicredits` at once (no hold): a `usage` (or negative `adjustment`) transfer drawn
     * from lots in spending order. {@link InsufficientCreditsError} (402) when available < amount.
     * Replaying `transferId` returns the first transfer; other parameters → 409.
     */
    async debit(input: DebitInput, trx?: Trx): Promise<{ transfer: Transfer; replayed: boolean }> {
      assertMillicredits(input.millicredits);
      return run(trx, async (t) => {
        const account = await store.lockUserAccount(t, input.userId);
        const existing = await store.findTransfer(t, input.transferId);
        if (existing) {
          if (existing.kind !== input.kind || existing.amount !== input.millicredits || existing.debitAccountId !== account.id || !sameAttribution(existing, input)) {
            throw new IdempotencyConflictError('Transfer', input.transferId);
          }
          return { transfer: existing, replayed: true };
        }
        const { lots, available: have } = await spendable(t, account);
        if (have < input.millicredits) throw new InsufficientCreditsError(input.millicredits, have);
        const parts = await drawFromLots(t, lots, input.millicredits, false);
        const balanceAfter = await store.addToAccount(t, account.id, { debits: input.millicredits });
        const transfer = await store.insertTransfer(t, {
          id: input.transferId,
          debitAccountId: account.id,
          creditAccountId: await counterparty(t, input.kind),
          amount: input.millicredits,
          kind: input.kind,
          reason: input.reason ?? null,
          actor: input.actor,
          reference: input.reference ?? null,
          debitBalanceAfter: balanceAfter,
        });
        await store.insertAllocations(t, transfer.id, parts);
        return { transfer, replayed: false };
      });
    },

    /**
     * Takes back `millicredits` of a specific lot (e.g. the refunded share of a purchase): a
     * `refund_clawback` transfer to the refunds account. What the lot no longer has free (spent or
     * held) becomes debt, which blocks spending until the next grant repays it.
     * Replaying `transferId` returns the first result; other parameters → 409.
     */
    async clawback(input: ClawbackInput, trx?: Trx): Promise<ClawbackResult> {
      assertMillicredits(input.millicredits);
      return run(trx, async (t) => {
        const peek = await store.findLot(t, input.lotId);
        if (!peek) throw new LotNotFoundError();
        const account = (await store.lockAccountById(t, peek.accountId))!;
        const existing = await store.findTransfer(t, input.transferId);
        if (existing) {
          if (existing.kind !== 'refund_clawback' || existing.amount !== input.millicredits || existing.debitAccountId !== account.id) {
            throw new IdempotencyConflictError('Transfer', input.transferId);
          }
          const recovered = (await store.allocationsOf(t, existing.id)).filter((a) => a.lotId === input.lotId).reduce((s, a) => s + a.amount, 0);
          return { transfer: existing, recovered, debt: existing.amount - recovered, replayed: true };
        }
        const lot = (await store.findLot(t, input.lotId))!;
        if (input.millicredits > lot.amount) {
          throw new HoldStateError(lot.id, 'lot', `Cannot claw back ${input.millicredits} millicredits from a lot of ${lot.amount}.`);
        }
        const recovered = Math.min(input.millicredits, lot.remaining - lot.held);
        const debt = input.millicredits - recovered;
        if (recovered > 0) await store.changeLot(t, lot.id, { remaining: -recovered });
        const balanceAfter = await store.addToAccount(t, account.id, { debits: input.millicredits, debt });
        const transfer = await store.insertTransfer(t, {
          id: input.transferId,
          debitAccountId: account.id,
          creditAccountId: await counterparty(t, 'refund_clawback'),
          amount: input.millicredits,
          kind: 'refund_clawback',
          reason: input.reason ?? null,
          actor: input.actor,
          reference: input.reference ?? null,
          debitBalanceAfter: balanceAfter,
        });
        await store.insertAllocations(t, transfer.id, [{ lotId: lot.id, amount: recovered }]);
        return { transfer, recovered, debt, replayed: false };
      });
    },

    /**
     * Sweeper: moves the unheld remainder of every lot past its expiry (at `now`) to the `expired`
     * account, one `expiry` transfer per lot. Returns how many lots were expired. Safe to run from
     * several processes at once (each account is locked; a lot is expired at most once per remainder).
     */
    async expireLots(now: Date = clock(), batch = 500): Promise<number> {
      let count = 0;
      for (;;) {
        const accounts = await store.accountsWithExpiredLots(db, now, batch);
        if (accounts.length === 0) return count;
        for (const accountId of accounts) {
          count += await run(undefined, async (t) => {
            await store.lockAccountById(t, accountId);
            let n = 0;
            for (const lot of await store.expiredLotsOf(t, accountId, now)) {
              const amount = lot.remaining - lot.held;
              await store.changeLot(t, lot.id, { remaining: -amount });
              const balanceAfter = await store.addToAccount(t, accountId, { debits: amount });
              const transfer = await store.insertTransfer(t, {
                id: `expiry:${lot.id}:${lot.remaining}`,
                debitAccountId: accountId,
                creditAccountId: await counterparty(t, 'expiry'),
                amount,
                kind: 'expiry',
                reason: `${lot.source} credits expired`,
                actor: 'system',
                reference: { type: 'lot', id: lot.id },
                debitBalanceAfter: balanceAfter,
              });
              await store.insertAllocations(t, transfer.id, [{ lotId: lot.id, amount }]);
              n++;
            }
            return n;
          });
        }
        if (accounts.length < batch) return count;
      }
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
     * holds (active)}`. Reads the account row and open lots only, never the history.
     */
    async getBalance(userId: string, trx?: Trx): Promise<Balance> {
      const q = trx ?? db;
      const account = await store.findUserAccount(q, userId);
      if (!account) return { available: 0, held: 0, debt: 0, lots: [], holds: [] };
      const [free, lots, holds] = await Promise.all([
        store.freeCredits(q, account.id, clock()),
        store.openLots(q, account.id),
        store.activeHolds(q, account.id),
      ]);
      return { available: free - account.debt, held: account.debits_pending, debt: account.debt, lots, holds };
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
