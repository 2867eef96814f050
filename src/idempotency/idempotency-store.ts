import type { Db, Trx } from '../db/database.ts';

/** A row of `idempotency_keys`. */
export interface DbIdempotencyKeyRow {
  user_id: string;
  key: string;
  operation: string;
  request_hash: string;
  status_code: number;
  response: Record<string, unknown>;
  resource_type: string | null;
  resource_id: string | null;
  created_at: Date;
}

export interface StoredIdempotencyKey {
  userId: string;
  key: string;
  operation: string;
  requestHash: string;
  statusCode: number;
  response: Record<string, unknown>;
  resource: { type: string; id: string } | null;
  createdAt: Date;
}

function mapRow(r: DbIdempotencyKeyRow): StoredIdempotencyKey {
  return {
    userId: r.user_id,
    key: r.key,
    operation: r.operation,
    requestHash: r.request_hash,
    statusCode: r.status_code,
    response: r.response,
    resource: r.resource_type && r.resource_id ? { type: r.resource_type, id: r.resource_id } : null,
    createdAt: r.created_at,
  };
}

/** The user's key if it was stored after `since`. */
export async function findIdempotencyKey(q: Db | Trx, userId: string, key: string, since: Date): Promise<StoredIdempotencyKey | undefined> {
  const row = (await q('idempotency_keys').where({ user_id: userId, key }).andWhere('created_at', '>', since).first()) as DbIdempotencyKeyRow | undefined;
  return row ? mapRow(row) : undefined;
}

/**
 * Stores a key, or replaces one stored before `expiredBefore`. Returns false when a live row for
 * (user, key) exists (e.g. a concurrent request with the same key committed first).
 */
export async function insertIdempotencyKey(trx: Trx, row: Omit<StoredIdempotencyKey, 'createdAt'>, expiredBefore: Date): Promise<boolean> {
  const values = {
    user_id: row.userId,
    key: row.key,
    operation: row.operation,
    request_hash: row.requestHash,
    status_code: row.statusCode,
    response: JSON.stringify(row.response),
    resource_type: row.resource?.type ?? null,
    resource_id: row.resource?.id ?? null,
    created_at: trx.fn.now(),
  };
  const inserted = await trx('idempotency_keys')
    .insert(values)
    .onConflict(['user_id', 'key'])
    .merge()
    .where('idempotency_keys.created_at', '<', expiredBefore)
    .returning('key');
  return inserted.length === 1;
}

/** Deletes keys stored before `before`. Returns how many. */
export async function purgeIdempotencyKeys(q: Db, before: Date): Promise<number> {
  return q('idempotency_keys').where('created_at', '<', before).delete();
}
