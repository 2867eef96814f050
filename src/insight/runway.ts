/**
 * The runway forecast: when the credits run out at a given daily spend, taking expiring lots into
 * account. Pure arithmetic on millicredits and milliseconds (a forecast, not a ledger amount).
 */

export interface RunwayLot {
  /** Spendable millicredits of the lot (remaining − held). */
  free: number;
  /** Null: never expires. */
  expiresAt: Date | null;
}

/**
 * Simulates spending `dailySpend` millicredits a day from `now` the way the ledger spends:
 * soonest-expiring lots first (lots without expiry last), each lot's unspent rest lost at its
 * expiry. `debt` is repaid first (it comes off the soonest lots). Returns when the credits run
 * out, or null when the spend is 0 (never) or there is nothing to spend (`now`).
 */
export function projectEmptyAt(lots: RunwayLot[], debt: number, dailySpend: number, now: Date): Date | null {
  const ordered = lots
    .filter((l) => l.free > 0 && (l.expiresAt === null || l.expiresAt > now))
    .sort((a, b) => (a.expiresAt?.getTime() ?? Infinity) - (b.expiresAt?.getTime() ?? Infinity));
  let owed = debt;
  const usable = ordered.map((l) => {
    const take = Math.min(owed, l.free);
    owed -= take;
    return { free: l.free - take, expiresAt: l.expiresAt };
  });
  const total = usable.reduce((s, l) => s + l.free, 0);
  if (total <= 0) return now;
  if (dailySpend <= 0) return null;
  const perMs = dailySpend / 86_400_000;
  let t = now.getTime();
  for (const lot of usable) {
    if (lot.free <= 0) continue;
    const end = lot.expiresAt?.getTime() ?? Infinity;
    if (t >= end) continue; // expired before the spending reached it
    const done = t + lot.free / perMs;
    t = Math.min(done, end);
  }
  return new Date(Math.round(t));
}
