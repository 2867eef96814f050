import { DomainError } from '../domain-error.ts';
import type { LedgerErrorCode } from '../ledger/ledger-errors.ts';
import { AppError, ValidationError } from './errors.ts';

/**
 * The one mapping from domain error codes to HTTP: status and title of the problem+json
 * (RFC 9457). The domain's `detail` and `data` become the problem's `detail` and extension members.
 * Statuses follow the design's conventions: 402 not enough credits, 404 not found, 409 conflict.
 */
const PROBLEMS: Record<LedgerErrorCode, { status: number; title: string }> = {
  insufficient_credits: { status: 402, title: 'Not enough credits' },
  idempotency_conflict: { status: 409, title: 'Conflict' },
  hold_not_active: { status: 409, title: 'Conflict' },
  hold_not_found: { status: 404, title: 'Not found' },
  lot_not_found: { status: 404, title: 'Not found' },
  account_not_found: { status: 404, title: 'Not found' },
  balance_limit: { status: 409, title: 'Conflict' },
  spend_cap_exceeded: { status: 403, title: 'Spend cap reached' },
};

/** The problem for a domain error; an unmapped code is a bug on our side (500). */
export function domainProblem(err: DomainError): AppError {
  // A bad cursor is bad input: 400 naming the field, like every validation error.
  if (err.code === 'invalid_cursor') return new ValidationError([{ field: String(err.data.field ?? 'query.cursor'), message: err.detail }]);
  const mapped = Object.hasOwn(PROBLEMS, err.code) ? PROBLEMS[err.code as LedgerErrorCode] : undefined;
  if (!mapped) return new AppError(500, 'internal_error', 'Internal server error', 'Something went wrong on our side.');
  return new AppError(mapped.status, err.code, mapped.title, err.detail, { ...err.data });
}

/** `err` as an AppError when it is one or a domain error (for pages that show errors inline); otherwise undefined. */
export function asProblem(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  if (err instanceof DomainError) return domainProblem(err);
  return undefined;
}
