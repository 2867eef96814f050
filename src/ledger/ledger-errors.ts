import { DomainError } from '../domain-error.ts';
import { millicreditsToCredits } from './credits.ts';

/**
 * Errors of the ledger. Each carries a stable `code` (listed in {@link LEDGER_ERROR_CODES}) and no
 * HTTP status: the web layer maps codes to statuses in one place (src/http/domain-problems.ts).
 */
export const LEDGER_ERROR_CODES = [
  'insufficient_credits',
  'idempotency_conflict',
  'hold_not_active',
  'hold_not_found',
  'lot_not_found',
  'account_not_found',
  'balance_limit',
  'spend_cap_exceeded',
] as const;
export type LedgerErrorCode = (typeof LEDGER_ERROR_CODES)[number];

/**
 * The account cannot cover `required` millicredits. `data` carries credits:
 * `{required, available}` (available may be below zero while a refund debt is outstanding),
 * plus `extra` (e.g. `topUpUrl`).
 */
export class InsufficientCreditsError extends DomainError {
  constructor(
    readonly requiredMillicredits: number,
    readonly availableMillicredits: number,
    extra: Record<string, unknown> = {},
  ) {
    super(
      'insufficient_credits',
      `This needs ${millicreditsToCredits(requiredMillicredits)} credits; ${millicreditsToCredits(availableMillicredits)} are available.`,
      { required: millicreditsToCredits(requiredMillicredits), available: millicreditsToCredits(availableMillicredits), ...extra },
    );
  }
}

/** An id (transfer or hold = idempotency key) was reused with different parameters. */
export class IdempotencyConflictError extends DomainError {
  constructor(what: string, id: string) {
    super('idempotency_conflict', `${what} ${id} already exists with different parameters.`);
  }
}

/** The hold was already resolved differently (posted vs voided/expired), or posting exceeds it. */
export class HoldStateError extends DomainError {
  constructor(holdId: string, status: string, detail?: string) {
    super('hold_not_active', detail ?? `Hold ${holdId} is ${status}.`, { status });
  }
}

export class HoldNotFoundError extends DomainError {
  constructor() {
    super('hold_not_found', 'No such hold.');
  }
}

export class LotNotFoundError extends DomainError {
  constructor() {
    super('lot_not_found', 'No such lot.');
  }
}

export class AccountNotFoundError extends DomainError {
  constructor() {
    super('account_not_found', 'No such account.');
  }
}

/**
 * A grant would take the account's total credited past 2^53 − 1 millicredits, the largest amount
 * JS numbers (and so this API) hold exactly (src/ledger/credits.ts). Nothing is granted; the
 * account can still spend what it has. `data.limit` is that limit in credits.
 */
export class BalanceLimitError extends DomainError {
  constructor(readonly creditedMillicredits: number, readonly requestedMillicredits: number) {
    super(
      'balance_limit',
      `This grant of ${millicreditsToCredits(requestedMillicredits)} credits would take the account past the largest balance Tally can hold ` +
        `(${millicreditsToCredits(Number.MAX_SAFE_INTEGER)} credits in all, ${millicreditsToCredits(creditedMillicredits)} credited so far).`,
      { limit: millicreditsToCredits(Number.MAX_SAFE_INTEGER) },
    );
  }
}

/** The one date format people see (as the pages' `fmt.dateTime`). */
const RESET_FORMAT = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });

/** Which spend cap refused a hold (issue 14): the daily or monthly period cap, or the per-job maximum. */
export type SpendCapKind = 'daily' | 'monthly' | 'per_job';

/**
 * A hold (or usage debit) would take the period's spending past a cap (src/spend/, the policy in
 * migration 20261130170000). Nothing is held. `data` (credits): `{cap, limit, spent, held,
 * resetsAt}`: spent = posted in the period, held = still reserved in it, resetsAt = the start of
 * the next period (ISO 8601; null for the per-job maximum).
 */
export class SpendCapExceededError extends DomainError {
  constructor(
    readonly cap: SpendCapKind,
    readonly limitMillicredits: number,
    readonly spentMillicredits: number,
    readonly heldMillicredits: number,
    readonly resetsAt: Date | null,
    readonly requiredMillicredits: number,
  ) {
    const limit = millicreditsToCredits(limitMillicredits);
    const detail =
      cap === 'per_job'
        ? `This job needs ${millicreditsToCredits(requiredMillicredits)} credits, above your per-job maximum of ${limit} credits.`
        : `This needs ${millicreditsToCredits(requiredMillicredits)} credits, but your ${cap} cap of ${limit} credits has ` +
          `${millicreditsToCredits(Math.max(0, limitMillicredits - spentMillicredits - heldMillicredits))} credits of room left ` +
          `(${millicreditsToCredits(spentMillicredits)} spent, ${millicreditsToCredits(heldMillicredits)} held). It resets on ${resetsAt ? RESET_FORMAT.format(resetsAt) : ''} UTC.`;
    super('spend_cap_exceeded', detail, {
      cap,
      limit,
      spent: millicreditsToCredits(spentMillicredits),
      held: millicreditsToCredits(heldMillicredits),
      resetsAt: resetsAt ? resetsAt.toISOString() : null,
    });
  }
}
