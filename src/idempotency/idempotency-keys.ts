import crypto from 'node:crypto';
import type { Db, Trx } from '../db/database.ts';
import {
  findIdempotencyKey,
  insertIdempotencyKey,
  purgeIdempotencyKeys,
  type StoredIdempotencyKey,
} from './idempotency-store.ts';

export type { StoredIdempotencyKey } from './idempotency-store.ts';

/** How long a key is remembered: 24 hours, as Stripe does (https://docs.stripe.com/api/idempotent_requests). */
export const IDEMPOTENCY_KEY_TTL_MS = 24 * 3_600_000;

/**
 * The one hash of idempotency keys and requests in Tally: sha256 (hex) of the parts joined by
 * newlines. Used for ids derived from a key (holds, transfers) and for request fingerprints.
 */
export function keyHash(...parts: Array<string | Uint8Array>): string {
  const h = crypto.createHash('sha256');
  parts.forEach((p, i) => {
    if (i > 0) h.update('\n');
    h.update(p);
  });
  return h.digest('hex');
}

/**
 * Idempotency keys of users' requests: what a key was used for, a hash of that request, and the
 * response given, kept {@link IDEMPOTENCY_KEY_TTL_MS} whatever happens to what the request created.
 */
export function createIdempotencyKeys(db: Db, clock: () => Date = () => new Date()) {
  const cutoff = () => new Date(clock().getTime() - IDEMPOTENCY_KEY_TTL_MS);
  return {
    /** The stored use of `key` by `userId` in the last 24 hours, or undefined. */
    find(userId: string, key: string, q: Db | Trx = db): Promise<StoredIdempotencyKey | undefined> {
      return findIdempotencyKey(q, userId, key, cutoff());
    },

    /**
     * Remembers a key in the caller's transaction (the one that did the work), so key and work
     * commit together. Returns false when the key is already taken (a concurrent request with the
     * same key committed first): the caller rolls back and replays that one.
     */
    remember(trx: Trx, entry: Omit<StoredIdempotencyKey, 'createdAt'>): Promise<boolean> {
      return insertIdempotencyKey(trx, entry, cutoff());
    },

    /** Forgets keys older than 24 hours (the sweeper calls this). Returns how many. */
    purgeExpired(): Promise<number> {
      return purgeIdempotencyKeys(db, cutoff());
    },
  };
}

export type IdempotencyKeys = ReturnType<typeof createIdempotencyKeys>;
