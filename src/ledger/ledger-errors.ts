import { AppError, ConflictError, NotFoundError } from '../http/errors.ts';
import { millicreditsToCredits } from './credits.ts';

/**
 * 402: the account cannot cover `required` millicredits. The problem+json body carries credits:
 * `{required, available}` (available may be below zero while a refund debt is outstanding).
 */
export class InsufficientCreditsError extends AppError {
  constructor(
    readonly requiredMillicredits: number,
    readonly availableMillicredits: number,
    extra: Record<string, unknown> = {},
  ) {
    super(
      402,
      'insufficient_credits',
      'Not enough credits',
      `This needs ${millicreditsToCredits(requiredMillicredits)} credits; ${millicreditsToCredits(availableMillicredits)} are available.`,
      { required: millicreditsToCredits(requiredMillicredits), available: millicreditsToCredits(availableMillicredits), ...extra },
    );
  }
}

/** 409: an id (transfer or hold = idempotency key) was reused with different parameters. */
export class IdempotencyConflictError extends ConflictError {
  constructor(what: string, id: string) {
    super(`${what} ${id} already exists with different parameters.`, 'idempotency_conflict');
  }
}

/** 409: the hold was already resolved differently (posted vs voided/expired), or posting exceeds it. */
export class HoldStateError extends ConflictError {
  constructor(holdId: string, status: string, detail?: string) {
    super(detail ?? `Hold ${holdId} is ${status}.`, 'hold_not_active', { status });
  }
}

export class HoldNotFoundError extends NotFoundError {
  constructor() {
    super('hold');
  }
}

export class LotNotFoundError extends NotFoundError {
  constructor() {
    super('lot');
  }
}

export class AccountNotFoundError extends NotFoundError {
  constructor() {
    super('account');
  }
}

/**
 * 409: a grant would take the account's total credited past 2^53 − 1 millicredits, the largest
 * amount JS numbers (and so this API) hold exactly (src/ledger/credits.ts). Nothing is granted;
 * the account can still spend what it has.
 */
export class BalanceLimitError extends ConflictError {
  constructor(readonly creditedMillicredits: number, readonly requestedMillicredits: number) {
    super(
      `This grant of ${millicreditsToCredits(requestedMillicredits)} credits would take the account past the largest balance Tally can hold ` +
        `(${millicreditsToCredits(Number.MAX_SAFE_INTEGER)} credits in all, ${millicreditsToCredits(creditedMillicredits)} credited so far).`,
      'balance_limit',
      { limit: millicreditsToCredits(Number.MAX_SAFE_INTEGER) },
    );
  }
}
