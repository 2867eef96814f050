import type { AuditLog } from '../auth/audit-log.ts';
import { DomainError } from '../domain-error.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Logger } from '../logger.ts';

/**
 * Codes of refusals at the hold that the audit log records (issue 19: "cap and budget refusals").
 * Today the ledger refuses only for lack of credits; the spend-cap and team-budget branches add
 * their codes here when they land.
 */
export const AUDITED_REFUSALS = new Set<string>(['insufficient_credits', 'spend_cap_exceeded', 'member_budget_exceeded', 'api_key_limit_exceeded']);

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
