import type { Trx } from '../db/database.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { SpendWatch } from '../ledger/ledger-types.ts';
import type { Logger } from '../logger.ts';

/**
 * What the wrapper calls after a committed spend: auto-recharge's threshold check for one user
 * (`AutoRecharge.afterSpend`); `watched` when the spend already said auto-recharge is on for them.
 */
export type SpendCheck = (userId: string, options?: { watched?: boolean }) => Promise<unknown>;

/** The checks started after spends, so tests and shutdown can wait for them. */
export interface SpendChecks {
  /** Runs `check` in the background (errors logged). */
  start(check: () => Promise<unknown>): void;
  /** Resolves when every check started so far has finished. */
  settled(): Promise<void>;
}

/** A {@link SpendChecks} that logs failed checks. */
export function createSpendChecks(logger: Logger): SpendChecks {
  const running = new Set<Promise<unknown>>();
  return {
    start(check) {
      const tracked: Promise<unknown> = check()
        .catch((err: unknown) => logger.error({ err }, 'auto-recharge check after a spend failed'))
        .finally(() => running.delete(tracked));
      running.add(tracked);
    },
    async settled() {
      while (running.size > 0) await Promise.all([...running]);
    },
  };
}

/**
 * The ledger with auto-recharge's check after every spend that lowers a user's available credits
 * (issue 14: "after any spend"): `reserve` (a job's hold, HTTP or page), `debit`, an
 * `openDebit`'s commit (requireCredits' one-commit debits) and `post` (a hold settled, e.g. by
 * the task worker). The check runs after the spend commits: right away without an outer
 * transaction; with one, when that transaction commits (nothing when it rolls back). It runs
 * outside the spend, so a slow or failing Stripe call never slows or fails the spend (errors are
 * logged). Exactly-one-recharge is the check's job (`AutoRecharge.afterSpend`: settings row lock,
 * one pending recharge per user), so calling it once per spend, concurrently, is safe.
 * Spends made by a process without this wrapper (a separate `npm run worker`) are found by
 * `AutoRecharge.sweep` on the web process's sweep timer.
 */
export function withAutoRecharge(ledger: Ledger, deps: { check: SpendCheck; ownerOfAccount: (accountId: string) => Promise<string | undefined>; checks: SpendChecks }): Ledger {
  const { check, ownerOfAccount, checks } = deps;

  /**
   * Checks `user` once the spend is committed: after `trx` commits, or now. `watch` (the spend's
   * own answer, when it has one) stands in for the check's pre-read: auto-recharge off for the
   * owner, nothing to check; on, no need to ask again.
   */
  function after(trx: Trx | undefined, user: { userId?: string; accountId?: string }, watch?: SpendWatch) {
    if (watch && !watch.autoRecharge) return;
    const run = async () => {
      const userId = user.userId ?? (user.accountId ? await ownerOfAccount(user.accountId) : undefined);
      if (userId) await check(userId, { watched: watch?.autoRecharge === true });
    };
    if (!trx) return checks.start(run);
    // A rolled-back transaction spent nothing: no check.
    checks.start(() => trx.executionPromise.then(run, () => undefined));
  }

  return {
    ...ledger,
    async reserve(input, trx) {
      const hold = await ledger.reserve(input, trx);
      after(trx, { userId: input.userId });
      return hold;
    },
    async debit(input, trx) {
      const result = await ledger.debit(input, trx);
      if (!result.replayed) after(trx, { userId: input.userId }, result.watch);
      return result;
    },
    async openDebit(input) {
      const open = await ledger.openDebit(input);
      return {
        ...open,
        async commit() {
          const watch = await open.commit();
          if (!open.replayed) after(undefined, { userId: input.userId }, watch);
          return watch;
        },
      };
    },
    async post(input, trx) {
      const result = await ledger.post(input, trx);
      after(trx, { accountId: result.hold.accountId }, result.watch);
      return result;
    },
  };
}
