import { inTransaction, isUniqueViolation, type Db, type Trx } from '../db/database.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { ownerOfAccount } from './alerts-store.ts';
import type { LowBalanceMonitor } from './low-balance.ts';
import type { Notifier } from './notifier.ts';

/**
 * The ledger with notifications hooked in at the service level (the ledger itself stays
 * notification-free): every grant, spend, post, void and clawback runs in one transaction
 * together with its low-balance check (and, for a new grant, the `credits.granted` webhook
 * event), through the ledger's public API with an outer transaction. A purchase or subscription
 * grant resets the low-balance baseline. Replayed operations notify nothing new.
 */
export function withNotifications(ledger: Ledger, deps: { db: Db; lowBalance: LowBalanceMonitor; notifier: Notifier }): Ledger {
  const { db, lowBalance, notifier } = deps;

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

  async function checkAccount(t: Trx, accountId: string) {
    const userId = await ownerOfAccount(t, accountId);
    if (userId) await lowBalance.check(t, userId);
  }

  return {
    ...ledger,
    grant: (input, trx) =>
      run(trx, async (t) => {
        const result = await ledger.grant(input, t);
        if (result.replayed) return result;
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
    debit: (input, trx) =>
      run(trx, async (t) => {
        const result = await ledger.debit(input, t);
        if (!result.replayed) await lowBalance.check(t, input.userId);
        return result;
      }),
    post: (input, trx) =>
      run(trx, async (t) => {
        const result = await ledger.post(input, t);
        await checkAccount(t, result.hold.accountId);
        return result;
      }),
    void: (input, trx, status) =>
      run(trx, async (t) => {
        const hold = await ledger.void(input, t, status);
        await checkAccount(t, hold.accountId); // credits came back: may re-arm a threshold
        return hold;
      }),
    clawback: (input, trx) =>
      run(trx, async (t) => {
        const result = await ledger.clawback(input, t);
        if (!result.replayed) await checkAccount(t, result.transfer.debitAccountId);
        return result;
      }),
  };
}
