import type { ErrorRequestHandler } from 'express';
import { requestContext, type AuditLog } from '../auth/audit-log.ts';
import { DomainError } from '../domain-error.ts';
import { AppError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Logger } from '../logger.ts';

/**
 * Codes of refusals at the hold that the audit log records (issue 19: "cap and budget refusals"):
 * the ledger's own (not enough credits, a spend cap). Team budgets and key limits: see below.
 */
export const AUDITED_REFUSALS = new Set<string>(['insufficient_credits', 'spend_cap_exceeded']);

/**
 * The ledger with every refusal of a reserve or debit recorded as `credits.refused` (who, how
 * much was needed and available, for what), on its own connection: the caller's transaction may
 * well roll back after a refusal, the record of it stays. A failure to record is logged, and the
 * refusal is thrown as before.
 */
export function withRefusalAudit(ledger: Ledger, deps: { audit: AuditLog; logger: Logger }): Ledger {
  const { audit, logger } = deps;
  async function guarded<T>(input: { userId: string; actor: string; reference?: { type: string; id: string } | null; millicredits: number }, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      if (err instanceof DomainError && AUDITED_REFUSALS.has(err.code)) {
        const e = err as DomainError & { requiredMillicredits?: number; availableMillicredits?: number };
        await audit
          .record({
            actor: input.actor,
            actorUserId: /^(?:user|admin):[0-9a-f-]{36}$/i.test(input.actor) ? input.actor.slice(input.actor.indexOf(':') + 1) : null,
            action: 'credits.refused',
            target: { type: 'user', id: input.userId },
            details: {
              code: err.code,
              requiredMillicredits: e.requiredMillicredits ?? input.millicredits,
              availableMillicredits: e.availableMillicredits ?? null,
              reference: input.reference ? `${input.reference.type}:${input.reference.id}` : null,
            },
          })
          .catch((auditErr: unknown) => logger.error({ err: auditErr }, 'audit: recording a refusal failed'));
      }
      throw err;
    }
  }
  return {
    ...ledger,
    reserve: (input, trx) => guarded(input, () => ledger.reserve(input, trx)),
    debit: (input, trx) => guarded(input, () => ledger.debit(input, trx)),
    openDebit: (input) => guarded(input, () => ledger.openDebit(input)),
  };
}

/**
 * Refusals of a team member's budget or an API key's credit limit (src/teams/spend-policy.ts) are
 * decided before the hold is placed, so the ledger never sees them: this error middleware (before
 * the problem+json handler) records them as `credits.refused` with the route and the limit, then
 * passes the error on unchanged.
 */
export const POLICY_REFUSALS = new Set<string>(['member-budget-exceeded', 'key-credit-limit-exceeded']);

export function auditPolicyRefusals(audit: AuditLog, logger: Logger): ErrorRequestHandler {
  return (err, req, _res, next) => {
    const e = err as { code?: unknown; extensions?: Record<string, unknown> };
    if (err instanceof AppError && typeof e.code === 'string' && POLICY_REFUSALS.has(e.code)) {
      const userId = req.user?.id ?? null;
      audit
        .record({
          actor: userId ? `user:${userId}` : 'anonymous',
          actorUserId: userId,
          action: 'credits.refused',
          target: userId ? { type: 'user', id: userId } : null,
          ...requestContext(req),
          details: { code: e.code, method: req.method, path: req.path, ...(e.extensions ?? {}) },
        })
        .then(
          () => next(err),
          (auditErr: unknown) => {
            logger.error({ err: auditErr }, 'audit: recording a refusal failed');
            next(err);
          },
        );
      return;
    }
    next(err);
  };
}
