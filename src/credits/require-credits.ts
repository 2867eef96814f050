import crypto from 'node:crypto';
import type { NextFunction, Request, RequestHandler, Response } from 'express';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { UnauthorizedError } from '../http/errors.ts';
import { idempotencyKeyOf } from '../http/validate.ts';
import { assertMillicredits } from '../ledger/credits.ts';
import { keyHash } from '../idempotency/idempotency-keys.ts';
import { InsufficientCreditsError } from '../ledger/ledger-errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Hold, Reference, Transfer } from '../ledger/ledger-types.ts';
import { attributeHold, checkSpendPolicies, type Spender } from '../teams/spend-policy.ts';

/** What `requireCredits` puts on `req.credits` for the handler. Amounts are millicredits. */
export interface CreditsContext {
  /**
   * The hold. With `settle: 'one-commit'`, the pending charge seen as a hold: `id` is the usage
   * transfer's id, `status` is `active` until the charge commits (`posted` when an earlier request
   * with the same Idempotency-Key committed it).
   */
  hold: Hold;
  /** With `settle: 'one-commit'`: the usage transfer, committed when the request settles successfully. */
  charge?: Transfer;
  /** True when this hold already existed (same Idempotency-Key replayed). */
  replayed: boolean;
  /**
   * Settles now: posts `millicredits` (≤ held; default the whole hold) and releases the rest.
   * Await it before responding when the response should show the new balance.
   */
  post(millicredits?: number): Promise<void>;
  /** Voids the hold now: the user pays nothing. */
  void(): Promise<void>;
  /**
   * The hold now belongs to a background job, which posts or voids it; the middleware lets go.
   * With `settle: 'job'`, `work` runs in the transaction that placed the hold (create the job's
   * records and queue it there), which then commits: hold, records and job exist together or not
   * at all. If `work` throws, the transaction rolls back (nothing held) and the error is rethrown.
   */
  handOff<T>(work?: (trx: Trx) => Promise<T>): Promise<T | undefined>;
  /** Reports the actual cost; posted when the response finishes (if nothing else settled it). */
  report(millicredits: number): void;
}

declare module 'express-serve-static-core' {
  interface Request {
    credits?: CreditsContext;
  }
}

export interface RequireCreditsOptions {
  ledger: Ledger;
  /**
   * `response` (default): the hold commits at once and is posted/voided when the response ends.
   * `job`: the hold is placed in a transaction left open for the handler, which must call
   * `req.credits.handOff(work)` to create the job in that same transaction; needs `db`. A handler
   * that fails or never hands off leaves nothing held (the transaction rolls back).
   * `one-commit`: the price is final up front, so it is charged in ONE commit instead of reserve +
   * post: a debit made under the account lock before the handler (402 when short), in a
   * transaction that commits when the response finishes with a status < 400 and rolls back
   * otherwise (error status, connection closed early, `void()`, or no settlement within
   * `timeoutMs`) — a hold's guarantees, one write to disk. The account row stays locked meanwhile:
   * for short, synchronous handlers that do not use this user's ledger. `report()`/`post()` of
   * another amount and `handOff()` throw: use a hold for those routes.
   */
  settle?: 'response' | 'job' | 'one-commit';
  /** The database, for `settle: 'job'`. */
  db?: Db;
  /** The hold's id. Default: derived from user, route and `Idempotency-Key` (random without one). */
  holdId?: (req: Request) => string;
  /** How long the hold lives before the sweeper voids it (ms). Default 15 minutes. */
  timeoutMs?: number;
  /** Where the 402 problem sends people to buy credits (`topUpUrl`). */
  topUpUrl: string;
  /** What the hold is for, shown in the user's statement. */
  reason?: string | ((req: Request) => string);
  reference?: (req: Request) => Reference | null;
  /**
   * Who spends from which wallet (an API key, a team's pool: src/teams/wallets.ts), or undefined
   * for the signed-in user's own wallet without a key. When given, the hold is placed on
   * `ownerId`'s account in a transaction that first enforces the key's monthly limit and the
   * member's budgets ({@link checkSpendPolicies}) and then records who placed it; needs `db`.
   * Not used by `settle: 'one-commit'` (which always charges the user's own wallet).
   */
  spender?: (req: Request) => Promise<Spender | undefined>;
}

/**
 * Prices a route: computes `estimate(req)` (millicredits), places a hold for it before the handler
 * runs and exposes it as `req.credits`. The hold id is derived from the user, route and
 * `Idempotency-Key` header when one is sent, so a retried request holds nothing new.
 *
 * With `settle: 'job'` the hold is placed in a transaction the handler finishes: it creates the
 * job in it through `req.credits.handOff(work)`, and the hold, the job's records and the queued
 * job commit together (the OCR upload route does this; the worker then posts or voids). A handler
 * that throws or answers without handing off leaves nothing held.
 *
 * Otherwise settlement, unless the handler settles (`req.credits.post/void`) or hands the hold to a job
 * (`req.credits.handOff()`): when the response finishes with a status < 400 the reported cost
 * (`req.credits.report`, default the whole estimate) is posted and the rest released; on an error
 * status, or a connection closed early, the hold is voided.
 *
 * With `settle: 'one-commit'` (a price known up front) there is no hold: the price is debited in a
 * transaction that commits with the successful response (see {@link RequireCreditsOptions.settle}).
 *
 * Not enough credits → 402 problem+json `{required, available, topUpUrl}` (credits) and no hold.
 * Requires a signed-in user (`req.user`), else 401.
 *
 * @example router.post('/api/reports', requireAuth, requireCredits(() => 2000, { ledger, topUpUrl }), handler)
 */
export function requireCredits(
  estimate: (req: Request) => number | Promise<number>,
  options: RequireCreditsOptions,
): RequestHandler {
  const { ledger } = options;
  const timeoutMs = options.timeoutMs ?? 15 * 60_000;

  /** `one-commit`: debit in an open transaction, committed or rolled back when the request settles. */
  async function chargeInOneCommit(a: {
    req: Request;
    res: Response;
    next: NextFunction;
    holdId: string;
    userId: string;
    millicredits: number;
    reason: string;
    reference: Reference | null;
  }): Promise<void> {
    const { req, res, userId, millicredits } = a;
    const actor = `user:${userId}`;
    let charge: Awaited<ReturnType<Ledger['openDebit']>>;
    try {
      charge = await ledger.openDebit({ transferId: a.holdId, userId, millicredits, kind: 'usage', actor, reason: a.reason, reference: a.reference });
    } catch (err) {
      if (err instanceof InsufficientCreditsError) {
        throw new InsufficientCreditsError(err.requiredMillicredits, err.availableMillicredits, { topUpUrl: options.topUpUrl });
      }
      throw err;
    }
    const { transfer, replayed } = charge;
    let settled = replayed;
    if (replayed) await charge.commit();
    const end = async (commit: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      await (commit ? charge.commit() : charge.rollback());
    };
    const timer = setTimeout(() => {
      end(false).catch((err) => req.log?.error({ err, transferId: transfer.id }, 'could not roll back a charge'));
    }, timeoutMs);
    timer.unref();
    const onlyThePrice = (amount: number) => {
      if (amount !== millicredits) throw new Error(`requireCredits settle 'one-commit': the price is ${millicredits} millicredits, not ${amount}`);
    };
    req.credits = {
      hold: {
        id: transfer.id,
        accountId: transfer.debitAccountId,
        amount: millicredits,
        status: replayed ? 'posted' : 'active',
        expiresAt: new Date(Date.now() + timeoutMs),
        reason: transfer.reason,
        actor: transfer.actor,
        reference: transfer.reference,
        postedAmount: replayed ? millicredits : null,
        transferId: replayed ? transfer.id : null,
        createdAt: transfer.createdAt,
        resolvedAt: null,
      },
      charge: transfer,
      replayed,
      async post(amount = millicredits) {
        onlyThePrice(amount);
        await end(true);
      },
      async void() {
        await end(false);
      },
      async handOff() {
        throw new Error("requireCredits settle 'one-commit': a charge cannot be handed off to a job; use a hold");
      },
      report(amount) {
        onlyThePrice(amount);
      },
    };
    const settleOnEnd = () => {
      end(res.statusCode < 400 && res.writableFinished).catch((err) => req.log?.error({ err, transferId: transfer.id }, 'could not settle a charge'));
    };
    res.on('finish', settleOnEnd);
    res.on('close', settleOnEnd);
    a.next();
  }

  return async (req, res, next) => {
    if (!req.user) throw new UnauthorizedError();
    const userId = req.user.id;
    const millicredits = await estimate(req);
    assertMillicredits(millicredits);
    const key = idempotencyKeyOf(req);
    const holdId = options.holdId ? options.holdId(req) : key ? `rc:${keyHash(userId, req.method, `${req.baseUrl}${req.path}`, key)}` : `rc:${crypto.randomUUID()}`;
    const reason = typeof options.reason === 'function' ? options.reason(req) : (options.reason ?? `${req.method} ${req.baseUrl}${req.path}`);
    const reference = options.reference?.(req) ?? null;
    if (options.settle === 'one-commit') return chargeInOneCommit({ req, res, next, holdId, userId, millicredits, reason, reference });
    const existed = key && !options.holdId ? (await ledger.findHold(holdId)) !== undefined : false;
    const spender = options.spender ? await options.spender(req) : undefined;
    // `job`: the hold's transaction stays open until the handler hands the hold off (or fails).
    // With a spender, the policies and the hold share one transaction (committed at once for `response`).
    let trx: Trx | undefined;
    if (options.settle === 'job' || spender) {
      if (!options.db) throw new Error("requireCredits: settle 'job' and spender need options.db");
      trx = await options.db.transaction();
    }
    const rollback = async () => {
      if (trx && !trx.isCompleted()) await trx.rollback().catch((err: unknown) => req.log?.error({ err, holdId }, 'could not roll back hold'));
    };
    let hold: Hold;
    try {
      if (spender) await checkSpendPolicies(trx!, spender, millicredits, new Date());
      hold = await ledger.reserve(
        {
          holdId,
          userId: spender?.ownerId ?? userId,
          millicredits,
          timeoutMs,
          actor: `user:${userId}`,
          reason,
          reference,
        },
        trx,
      );
      if (spender) await attributeHold(trx!, spender, hold);
      if (trx && options.settle !== 'job') {
        await trx.commit();
        trx = undefined;
      }
    } catch (err) {
      await rollback();
      if (err instanceof InsufficientCreditsError) {
        throw new InsufficientCreditsError(err.requiredMillicredits, err.availableMillicredits, { topUpUrl: options.topUpUrl });
      }
      throw err;
    }

    let settled = hold.status !== 'active';
    let reported: number | undefined;
    const actor = `user:${userId}`;
    const context: CreditsContext = {
      hold,
      replayed: existed,
      async post(amount = reported ?? hold.amount) {
        settled = true;
        await ledger.post({ holdId: hold.id, millicredits: amount, actor }, trx);
      },
      async void() {
        settled = true;
        await ledger.void({ holdId: hold.id, actor }, trx);
      },
      async handOff<T>(work?: (t: Trx) => Promise<T>): Promise<T | undefined> {
        settled = true;
        if (!trx) {
          if (!work) return undefined;
          if (!options.db) throw new Error('requireCredits: handOff(work) needs options.db');
          return inTransaction(options.db, work);
        }
        try {
          const result = work ? await work(trx) : undefined;
          await trx.commit();
          return result;
        } catch (err) {
          await rollback();
          throw err;
        }
      },
      report(amount) {
        assertMillicredits(amount, { allowZero: true });
        reported = amount;
      },
    };
    req.credits = context;

    const settleOnEnd = () => {
      if (trx) {
        // Never handed off: nothing was created for this hold, so it never existed.
        if (!trx.isCompleted()) void rollback();
        return;
      }
      if (settled) return;
      settled = true;
      const ok = res.statusCode < 400 && res.writableFinished;
      const action = ok
        ? ledger.post({ holdId: hold.id, millicredits: reported ?? hold.amount, actor })
        : ledger.void({ holdId: hold.id, actor });
      action.catch((err) => req.log?.error({ err, holdId: hold.id }, 'could not settle hold'));
    };
    res.on('finish', settleOnEnd);
    res.on('close', settleOnEnd);
    next();
  };
}
