import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { assertMillicredits } from '../ledger/credits.ts';
import { BalanceLimitError, IdempotencyConflictError, InsufficientCreditsError } from '../ledger/ledger-errors.ts';
import { fromJson } from '../ledger/ledger-store.ts';
import type { GrantKind, Lot, Reference, Transfer } from '../ledger/ledger-types.ts';

export interface MoveCreditsInput {
  /** Transfer id; doubles as the idempotency key. */
  transferId: string;
  /** The owner (user) whose lots are drawn. */
  fromUserId: string;
  /** The owner who receives one lot; null = the kind's system account (e.g. a gift waiting in `gift_codes`). */
  toUserId: string | null;
  /** Millicredits to move; null = all that may be drawn (0 → nothing moves, `transfer` null). */
  millicredits: number | null;
  /** Lot sources that may be drawn (`['purchase']`, `['trial']`); null = any. */
  sources: readonly string[] | null;
  /** The transfer's kind, which is also the new lot's source. */
  kind: GrantKind;
  actor: string;
  reason?: string | null;
  reference?: Reference | null;
}

export interface MoveCreditsResult {
  transfer: Transfer | null;
  /** The recipient's new lot (null when moved to a system account, or nothing moved). */
  lot: Lot | null;
  /** The soonest expiry of the lots drawn (the new lot's expiry); null = never. */
  expiresAt: Date | null;
  replayed: boolean;
}

/**
 * Moves credits between owned accounts as ONE balanced transfer (the PL/pgSQL function
 * `growth_move_credits_op`, migrations/20261130190300_create_ledger_move_credits.ts): only lots of
 * `sources`, in spending order, and the recipient's single lot keeps the soonest expiry of what it
 * came from. In `q` when it is a transaction, else in its own (retried on deadlock/serialization).
 * @throws InsufficientCreditsError (402) when fewer movable credits are free than asked.
 * @throws IdempotencyConflictError (409) when `transferId` was used with other parameters.
 * @throws BalanceLimitError (409) past the recipient's 2^53 − 1 millicredits.
 */
export async function moveCredits(q: Db | Trx, input: MoveCreditsInput, now: Date): Promise<MoveCreditsResult> {
  if (input.millicredits !== null) assertMillicredits(input.millicredits);
  return inTransaction(q, async (trx) => {
    const { rows } = await trx.raw(`SELECT growth_move_credits_op(?, ?, ?, ?, ?::text[], ?, ?, ?, ?, ?, ?) AS r`, [
      input.transferId,
      input.fromUserId,
      input.toUserId,
      input.millicredits,
      input.sources === null ? null : [...input.sources],
      input.kind,
      now,
      input.reason ?? null,
      input.actor,
      input.reference?.type ?? null,
      input.reference?.id ?? null,
    ]);
    const o = rows[0].r as Record<string, unknown>;
    switch (o.error) {
      case undefined:
        break;
      case 'TL402':
        throw new InsufficientCreditsError(o.required as number, o.available as number);
      case 'TL409':
        throw new IdempotencyConflictError('Transfer', input.transferId);
      case 'TL413':
        throw new BalanceLimitError(o.credited as number, o.amount as number);
      default:
        throw new Error(`growth_move_credits_op: unknown refusal ${JSON.stringify(o)}`);
    }
    const transfer = o.transfer ? fromJson.transfer(o.transfer) : null;
    const lot = o.lot ? fromJson.lot(o.lot) : null;
    const expiresAt = lot ? lot.expiresAt : o.expiresAt ? new Date(o.expiresAt as string) : null;
    return { transfer, lot, expiresAt, replayed: Boolean(o.replayed) };
  });
}
