import type { Db, Trx } from '../db/database.ts';
import { formatCredits, millicreditsToCredits } from '../ledger/credits.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import * as store from './alerts-store.ts';
import type { Notifier } from './notifier.ts';

/** Default thresholds: percentages of the balance right after the last purchase or subscription grant (issue 13). */
export const LOW_BALANCE_PERCENTS = [20, 10, 5] as const;

interface Threshold {
  key: string;
  millicredits: number;
  label: string;
}

/** `percent`% of `baseline`, floored, in integer arithmetic. */
const percentOf = (baseline: number, percent: number) => Number((BigInt(baseline) * BigInt(percent)) / 100n);

export type LowBalanceMonitor = ReturnType<typeof createLowBalanceMonitor>;

/**
 * Low-balance alerts. Each threshold (20/10/5% of the baseline, and the user's optional absolute
 * floor) fires once when the available balance drops below it and re-arms only when the balance
 * rises above it again. A check first locks the user's state row, so concurrent checks run one
 * after the other; the alert row's unique key (user, threshold, arming generation) backs that up. A check
 * runs in the spend's transaction when the caller gives one, else right after the spend commits
 * (src/notifications/alerting-ledger.ts).
 */
export function createLowBalanceMonitor(deps: { ledger: Pick<Ledger, 'getAvailable'>; notifier: Notifier }) {
  const { ledger, notifier } = deps;

  function thresholds(baseline: number | null, floor: number | null): Threshold[] {
    const out: Threshold[] = [];
    if (baseline !== null && baseline > 0) {
      for (const p of LOW_BALANCE_PERCENTS) out.push({ key: `${p}%`, millicredits: percentOf(baseline, p), label: `${p}% of your last top-up (${formatCredits(percentOf(baseline, p))} credits)` });
    }
    if (floor !== null) out.push({ key: 'floor', millicredits: floor, label: `your alert level of ${formatCredits(floor)} credits` });
    return out.filter((t) => t.millicredits > 0);
  }

  return {
    /**
     * Re-evaluates the user's thresholds in `trx` after their balance changed. With `rebase` (a
     * purchase or subscription grant just landed) the baseline becomes the balance now; with
     * `watched` the caller has seen {@link watching} say true. Fires the
     * thresholds crossed downward (one notification for the lowest of them) and re-arms those the
     * balance is above. Returns the keys that fired.
     */
    /**
     * True when the user has any threshold (a baseline or a floor): one unlocked read, so the many
     * spends of users without one cost a single query. Call before opening a check's transaction.
     */
    async watching(db: Db | Trx, userId: string): Promise<boolean> {
      const pre = await store.lowBalanceConfig(db, userId);
      return pre.baseline !== null || pre.floor !== null;
    },

    async check(trx: Trx, userId: string, opts: { rebase?: boolean; watched?: boolean } = {}): Promise<string[]> {
      if (!opts.rebase && !opts.watched && !(await this.watching(trx, userId))) return [];
      let { baseline, floor } = await store.lockLowBalanceState(trx, userId);
      const available = await ledger.getAvailable(userId, trx);
      if (opts.rebase) {
        baseline = Math.max(available, 0);
        await store.setBaseline(trx, userId, baseline);
      }
      const states = await store.thresholdStates(trx, userId);
      const fired: Threshold[] = [];
      for (const t of thresholds(baseline, floor)) {
        const state = states.get(t.key) ?? { armed: true, generation: 0 };
        if (state.armed && available < t.millicredits) {
          await store.saveThresholdState(trx, userId, t.key, { armed: false, generation: state.generation });
          const fresh = await store.insertLowBalanceAlert(trx, { userId, threshold: t.key, generation: state.generation, thresholdMillicredits: t.millicredits, balanceMillicredits: available });
          if (fresh) fired.push(t);
        } else if (!state.armed && available > t.millicredits) {
          await store.saveThresholdState(trx, userId, t.key, { armed: true, generation: state.generation + 1 });
        }
      }
      const lowest = fired.reduce<Threshold | undefined>((low, t) => (!low || t.millicredits < low.millicredits ? t : low), undefined);
      if (lowest) {
        const left = formatCredits(Math.max(available, 0));
        const generation = (states.get(lowest.key)?.generation ?? 0);
        await notifier.notify(trx, {
          userId,
          inbox: { type: 'balance.low', title: 'Your balance is low', body: `You have ${left} credits left: below ${lowest.label}.`, link: '/pricing' },
          email: {
            type: 'low_balance',
            data: (r) => ({ name: r.name, threshold: lowest.label, available: left, buyUrl: `${notifier.appUrl}/pricing`, settingsUrl: `${notifier.appUrl}/account/settings` }),
          },
          webhook: {
            type: 'balance.low',
            data: { threshold: lowest.key, thresholdCredits: millicreditsToCredits(lowest.millicredits), availableCredits: millicreditsToCredits(available) },
            eventId: `balance.low:${userId}:${lowest.key}:${generation}`,
          },
        });
      }
      return fired.map((t) => t.key);
    },
  };
}
