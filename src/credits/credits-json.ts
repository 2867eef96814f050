import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Balance, Hold, Lot, Reference, StatementEntry, TransferKind } from '../ledger/ledger-types.ts';

/**
 * The JSON shapes of credits at the API's edge. The ledger counts integer millicredits; everything
 * here is credits (JSON numbers with at most 3 decimals) and ISO 8601 timestamps.
 */

export interface LotJson {
  id: string;
  /** How the credits came in: purchase, signup_bonus, bonus, subscription_grant, adjustment, rollover; contribution, gift (purchased credits moved from another account). */
  source: Lot['source'];
  amount: number;
  /** Not yet spent or expired (includes what holds reserve). */
  remaining: number;
  expiresAt: string | null;
}

export interface HoldJson {
  id: string;
  amount: number;
  expiresAt: string;
  /** What the hold is for, in words (e.g. `OCR of scan.pdf (3 pages)`). */
  reason: string | null;
  reference: Reference | null;
}

/** The one balance shape every endpoint returns (`balance` in signup, login, me, admin…). */
export interface BalanceJson {
  /** Spendable now: unexpired lot remainders − holds − debt. */
  available: number;
  /** Reserved by active holds. */
  held: number;
  /** Owed after a refund of credits already spent; repaid from the next grant. */
  debt: number;
  lots: LotJson[];
  holds: HoldJson[];
}

/** A lot in credits (ISO expiry, null = never). */
export function lotJson(lot: Lot): LotJson {
  return {
    id: lot.id,
    source: lot.source,
    amount: millicreditsToCredits(lot.amount),
    remaining: millicreditsToCredits(lot.remaining),
    expiresAt: lot.expiresAt ? lot.expiresAt.toISOString() : null,
  };
}

/** An active hold in credits. */
export function holdJson(hold: Hold): HoldJson {
  return {
    id: hold.id,
    amount: millicreditsToCredits(hold.amount),
    expiresAt: hold.expiresAt.toISOString(),
    reason: hold.reason,
    reference: hold.reference,
  };
}

/**
 * A ledger {@link Balance} (millicredits) as `{available, held, debt, lots, holds}` in credits.
 * Lots past their expiry that no hold uses are left out (the sweeper is about to expire them;
 * they are not spendable). `now` decides that (default: the clock).
 */
export function balanceJson(balance: Balance, now: Date = new Date()): BalanceJson {
  return {
    available: millicreditsToCredits(balance.available),
    held: millicreditsToCredits(balance.held),
    debt: millicreditsToCredits(balance.debt),
    lots: balance.lots.filter((l) => l.held > 0 || l.expiresAt === null || l.expiresAt > now).map(lotJson),
    holds: balance.holds.map(holdJson),
  };
}

export interface TransferJson {
  id: string;
  kind: TransferKind;
  /** Signed credits: positive came in, negative went out. */
  amount: number;
  /** The account's posted balance (lots − debt, holds not subtracted) after this entry. */
  balanceAfter: number | null;
  reason: string | null;
  reference: Reference | null;
  holdId: string | null;
  createdAt: string;
  /** Only in admin views: who did it (`admin:<id>`, `system`, …). */
  actor?: string;
}

/** One statement line in credits. `withActor` adds `actor` (admin views only). */
export function transferJson(entry: StatementEntry, options: { withActor?: boolean } = {}): TransferJson {
  return {
    id: entry.id,
    kind: entry.kind,
    amount: millicreditsToCredits(entry.amount),
    balanceAfter: entry.balanceAfter === null ? null : millicreditsToCredits(entry.balanceAfter),
    reason: entry.reason,
    reference: entry.reference,
    holdId: entry.holdId,
    createdAt: entry.createdAt.toISOString(),
    ...(options.withActor ? { actor: entry.actor } : {}),
  };
}
