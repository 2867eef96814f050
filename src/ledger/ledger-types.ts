/** Domain types of the credit ledger. Every amount is integer millicredits (1 credit = 1000). */

/** Kinds that bring credits into a user account as a new lot. */
export type GrantKind = 'purchase' | 'signup_bonus' | 'bonus' | 'subscription_grant' | 'adjustment'
  // Rolled-over subscription credits (issue 15; migrations/20261130165000_add_rollover_kind.ts).
  | 'rollover';
/** Kinds of direct spend (`debit`). */
export type DebitKind = 'usage' | 'adjustment';
/** Kinds of a move of purchased credits between two owned accounts (`transferPurchased`): no system account in between. */
export type OwnedTransferKind = 'contribution' | 'gift';
export type TransferKind = GrantKind | 'usage' | 'refund_clawback' | 'expiry' | OwnedTransferKind;

export const GRANT_KINDS: readonly GrantKind[] = ['purchase', 'signup_bonus', 'bonus', 'subscription_grant', 'adjustment', 'rollover'];
export const TRANSFER_KINDS: readonly TransferKind[] = [...GRANT_KINDS, 'usage', 'refund_clawback', 'expiry', 'contribution', 'gift'];

/** The system account on the other side of each kind of transfer (mirrored by `ledger_counterparty` in SQL). */
export const COUNTERPARTY: Record<Exclude<TransferKind, OwnedTransferKind>, string> = {
  purchase: 'sales',
  signup_bonus: 'promotions',
  bonus: 'promotions',
  subscription_grant: 'subscriptions',
  rollover: 'subscriptions',
  adjustment: 'adjustments',
  usage: 'usage',
  refund_clawback: 'refunds',
  expiry: 'expired',
};

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
