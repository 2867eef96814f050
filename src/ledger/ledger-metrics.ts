import type { Metrics } from '../metrics/metrics.ts';
import { outcomeOf } from '../metrics/metrics.ts';
import type { Ledger } from './ledger-service.ts';

/** The ledger operations counted, by their method name → `kind` label. */
const OPERATIONS = {
  grant: 'grant',
  reserve: 'reserve',
  post: 'post',
  void: 'void',
  debit: 'debit',
  openDebit: 'debit',
  clawback: 'clawback',
  expireLot: 'expire_lot',
  expireLots: 'expire_lots',
  expireHolds: 'expire_holds',
} as const satisfies Partial<Record<keyof Ledger, string>>;

/**
 * The ledger with each write operation counted in `tally_ledger_operations_total{kind, outcome}`:
 * `ok`, `replayed` (an id applied before: the first result came back), or the refusal's stable
 * code (`insufficient_credits`, `idempotency_conflict`, `hold_not_active`, …; `error` for
 * anything else). Wraps the public TypeScript API only: one counter increment per call, no
 * change to the operations (their PL/pgSQL functions, group commit, outer transactions).
 * An operation that joined an outer transaction is counted when it returns, even if that
 * transaction later rolls back.
 */
export function withLedgerMetrics(ledger: Ledger, metrics: Pick<Metrics, 'ledgerOperations'>): Ledger {
  const counted: Partial<Ledger> = {};
  for (const [method, kind] of Object.entries(OPERATIONS) as Array<[keyof typeof OPERATIONS, string]>) {
    const op = ledger[method] as (...args: unknown[]) => Promise<unknown>;
    (counted as Record<string, unknown>)[method] = async (...args: unknown[]) => {
      try {
        const result = await op.apply(ledger, args);
        const replayed = (result as { replayed?: unknown } | null)?.replayed === true;
        metrics.ledgerOperations.inc({ kind, outcome: replayed ? 'replayed' : 'ok' });
        return result;
      } catch (err) {
        metrics.ledgerOperations.inc({ kind, outcome: outcomeOf(err) });
        throw err;
      }
    };
  }
  return { ...ledger, ...counted };
}
