/** Domain types of the credit ledger. Every amount is integer millicredits (1 credit = 1000). */

/** Kinds that bring credits into a user account as a new lot. */
export type GrantKind =
  | 'purchase'
  | 'signup_bonus'
  | 'bonus'
  | 'subscription_grant'
  | 'adjustment'
  // Credits in without a purchase (issue 17; migrations/20261130190000_add_growth_credit_sources.ts).
  | 'promo'
  | 'referral'
  | 'trial'
  | 'gift'
  | 'gift_return'
  | 'gift_code'
  // Rolled-over subscription credits (issue 15; migrations/20261130165000_add_rollover_kind.ts).
  | 'rollover';
/** Kinds of direct spend (`debit`). */
export type DebitKind = 'usage' | 'adjustment';
/** Kinds of a move of purchased credits between two owned accounts (`transferPurchased`): no system account in between. */
export type OwnedTransferKind = 'contribution' | 'gift';
export type TransferKind = GrantKind | 'usage' | 'refund_clawback' | 'expiry' | OwnedTransferKind;

export const GRANT_KINDS: readonly GrantKind[] = [
  'purchase',
  'signup_bonus',
  'bonus',
  'subscription_grant',
  'adjustment',
  'promo',
  'referral',
  'trial',
  'gift',
  'gift_return',
  'gift_code',
  'rollover',
];
export const TRANSFER_KINDS: readonly TransferKind[] = [...GRANT_KINDS, 'usage', 'refund_clawback', 'expiry', 'contribution'];

/**
 * The system account on the other side of each kind of transfer (mirrored by `ledger_counterparty` in
 * SQL). A `gift` has one only when it waits for a claim link (`gift_codes`, issue 17); a direct gift
 * or a contribution moves between two owned accounts.
 */
export const COUNTERPARTY: Record<Exclude<TransferKind, 'contribution'>, string> = {
  purchase: 'sales',
  signup_bonus: 'promotions',
  bonus: 'promotions',
  subscription_grant: 'subscriptions',
  rollover: 'subscriptions',
  adjustment: 'adjustments',
  usage: 'usage',
  refund_clawback: 'refunds',
  expiry: 'expired',
  promo: 'promotions',
  referral: 'promotions',
  trial: 'promotions',
  gift: 'gift_codes',
  gift_return: 'gift_codes',
  gift_code: 'sales',
};

/**
 * What watches the spends of an account's owner, read in the spend's own round trip (debit, post;
 * migrations/20261130232000_create_spend_watch.ts): `lowBalance` when the owner has a low-balance
 * baseline or floor (src/notifications/low-balance.ts), `autoRecharge` when auto-recharge is on
 * with a saved card (src/recharge). The after-spend checks skip their own read when it says false.
 */
export interface SpendWatch {
  lowBalance: boolean;
  autoRecharge: boolean;
}

/** What a movement is about: `{type: 'payment', id}`, `{type: 'task', id}`, `{type: 'admin', id}`… */
export interface Reference {
  type: string;
  id: string;
}

export interface Transfer {
  id: string;
  debitAccountId: string;
  creditAccountId: string;
  amount: number;
  kind: TransferKind;
  reason: string | null;
  actor: string;
  reference: Reference | null;
  holdId: string | null;
  debitBalanceAfter: number | null;
  creditBalanceAfter: number | null;
  createdAt: Date;
}

export interface Lot {
  id: string;
  accountId: string;
  transferId: string;
  /** How the credits came in: a grant's kind, or `contribution` / `gift` for purchased credits moved from another account. */
  source: GrantKind | OwnedTransferKind;
  amount: number;
  /** Not yet spent, expired or clawed back (includes what is held). */
  remaining: number;
  /** Earmarked by active holds. */
  held: number;
  expiresAt: Date | null;
  createdAt: Date;
}

export type HoldStatus = 'active' | 'posted' | 'voided' | 'expired';

export interface Hold {
  id: string;
  accountId: string;
  amount: number;
  status: HoldStatus;
  expiresAt: Date;
  reason: string | null;
  actor: string;
  reference: Reference | null;
  postedAmount: number | null;
  transferId: string | null;
  createdAt: Date;
  resolvedAt: Date | null;
}

export interface Balance {
  /** Spendable now: unexpired lot remainders − holds − debt. Negative while a debt exceeds the lots. */
  available: number;
  /** Reserved by active holds. */
  held: number;
  /** Owed after a refund of credits that were already spent; repaid by the next grant. */
  debt: number;
  lots: Lot[];
  holds: Hold[];
}

/** One line of a user's statement: a transfer seen from their account. */
export interface StatementEntry {
  id: string;
  kind: TransferKind;
  /** Signed: positive when credits came in, negative when they went out. */
  amount: number;
  /** The account's posted balance (lots − debt, holds not subtracted) after this entry. */
  balanceAfter: number | null;
  reason: string | null;
  actor: string;
  reference: Reference | null;
  holdId: string | null;
  createdAt: Date;
}

export type { Page } from '../pagination.ts';
