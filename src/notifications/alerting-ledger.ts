import { inTransaction, isUniqueViolation, type Db, type Trx } from '../db/database.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { SpendWatch } from '../ledger/ledger-types.ts';
import type { Logger } from '../logger.ts';
import { ownerOfAccount } from './alerts-store.ts';
import type { LowBalanceMonitor } from './low-balance.ts';
import type { Notifier } from './notifier.ts';

/**
 * The ledger with notifications hooked in at the service level (the ledger itself stays
 * notification-free), through its public API:
 *
 * - A grant runs in one transaction with its `credits.granted` webhook event and its low-balance
 *   check (a purchase or subscription grant resets the baseline): a rolled-back grant sends
 *   nothing. Grants are rare, so giving up group commit for them costs nothing that matters.
 * - A spend (debit, openDebit, post, void, clawback) given an outer transaction is checked in
 *   it. Without one, the operation keeps its single round trip and group commit, and the
 *   low-balance check runs right after it commits, in its own short transaction. The check is
 *   state-based (an armed threshold above the balance), so if a process dies between the two,
 *   the next operation of that user fires the alert; a failed check is logged, never reported as
 *   a failure of the spend that already committed.
 *
 * Replayed operations notify nothing new.
 */
export function withNotifications(ledger: Ledger, deps: { db: Db; lowBalance: LowBalanceMonitor; notifier: Notifier; logger: Logger }): Ledger {
  const { db, lowBalance, notifier, logger } = deps;

  /** Runs `fn` in `trx`, or in a new transaction, rerun like the ledger does when a concurrent same-id request won. */
  async function run<T>(trx: Trx | undefined, fn: (t: Trx) => Promise<T>): Promise<T> {
    if (trx) return fn(trx);
    for (let attempt = 0; ; attempt++) {
      try {
        return await inTransaction(db, fn);
      } catch (err) {
        if (attempt < 2 && (isUniqueViolation(err, 'transfers_pkey') || isUniqueViolation(err, 'holds_pkey'))) continue;
        throw err;
      }
    }
  }

  /**
   * The check of a committed spend: its own transaction; errors are logged, not thrown. `watch`
   * (the spend's own answer, when it has one) stands in for the check's own pre-read: no baseline
   * or floor, nothing to check; one of them, no need to ask again.
   */
  async function checkAfterCommit(user: { userId?: string; accountId?: string }, watch?: SpendWatch): Promise<void> {
    if (watch && !watch.lowBalance) return;
    try {
      const userId = user.userId ?? (user.accountId ? await ownerOfAccount(db, user.accountId) : undefined);
      if (userId && (watch?.lowBalance || (await lowBalance.watching(db, userId)))) await inTransaction(db, (t) => lowBalance.check(t, userId, { watched: true }));
    } catch (err) {
      logger.error({ err, ...user }, 'low-balance check after a ledger operation failed');
    }
  }

  async function checkIn(trx: Trx, user: { userId?: string; accountId?: string }): Promise<void> {
    const userId = user.userId ?? (user.accountId ? await ownerOfAccount(trx, user.accountId) : undefined);
    if (userId && !(await isTeam(trx, userId))) await lowBalance.check(trx, userId);
  }

  /** A team's pool (src/teams) has an owner id that is no user's: no alerts or user webhooks for it. */
  async function isTeam(trx: Trx, ownerId: string): Promise<boolean> {
    return (await trx('teams').where({ id: ownerId }).first('id')) !== undefined;
  }

  return {
    ...ledger,
    grant: (input, trx) =>
      run(trx, async (t) => {
        const result = await ledger.grant(input, t);
        if (result.replayed || (await isTeam(t, input.userId))) return result;
        await lowBalance.check(t, input.userId, { rebase: input.kind === 'purchase' || input.kind === 'subscription_grant' });
        await notifier.notify(t, {
          userId: input.userId,
          webhook: {
            type: 'credits.granted',
            eventId: `credits.granted:${result.transfer.id}`,
            data: {
              transferId: result.transfer.id,
              lotId: result.lot.id,
              kind: input.kind,
              credits: millicreditsToCredits(input.millicredits),
              expiresAt: result.lot.expiresAt,
              reason: input.reason ?? null,
              reference: input.reference ?? null,
            },
          },
        });
        return result;
      }),
    async debit(input, trx) {
      const result = await ledger.debit(input, trx);
      if (!result.replayed) await (trx ? checkIn(trx, { userId: input.userId }) : checkAfterCommit({ userId: input.userId }, result.watch));
      return result;
    },
    async openDebit(input) {
      const open = await ledger.openDebit(input);
      return {
        ...open,
        async commit() {
          const watch = await open.commit();
          if (!open.replayed) await checkAfterCommit({ userId: input.userId }, watch);
          return watch;
        },
      };
    },
    async post(input, trx) {
      const result = await ledger.post(input, trx);
      await (trx ? checkIn(trx, { accountId: result.hold.accountId }) : checkAfterCommit({ accountId: result.hold.accountId }, result.watch));
      return result;
    },
    async void(input, trx, status) {
      const hold = await ledger.void(input, trx, status);
      // Credits came back: may re-arm a threshold.
      await (trx ? checkIn(trx, { accountId: hold.accountId }) : checkAfterCommit({ accountId: hold.accountId }));
      return hold;
    },
    async clawback(input, trx) {
      const result = await ledger.clawback(input, trx);
      if (!result.replayed) await (trx ? checkIn(trx, { accountId: result.transfer.debitAccountId }) : checkAfterCommit({ accountId: result.transfer.debitAccountId }));
      return result;
    },
  };
}
