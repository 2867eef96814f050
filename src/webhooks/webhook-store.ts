import type { Db, Trx } from '../db/database.ts';
import type { WebhookPayload } from './webhook-events.ts';

/** SQL of webhook endpoints, their delivery outbox and the attempt log. */

export interface WebhookEndpoint {
  id: string;
  userId: string;
  url: string;
  events: string[];
  description: string | null;
  status: 'enabled' | 'disabled';
  disabledReason: string | null;
  failingSince: Date | null;
  createdAt: Date;
}

export interface DbEndpointRow {
  id: string;
  user_id: string;
  url: string;
  events: string[];
  description: string | null;
  secret: string;
  status: 'enabled' | 'disabled';
  disabled_reason: string | null;
  failing_since: Date | null;
  created_at: Date;
}

export type DeliveryStatus = 'pending' | 'delivering' | 'succeeded' | 'failed';

export interface WebhookDelivery {
  id: string;
  endpointId: string;
  messageId: string;
  type: string;
  payload: WebhookPayload;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: Date;
  lastResponseCode: number | null;
  lastError: string | null;
  createdAt: Date;
  completedAt: Date | null;
}

interface DbDeliveryRow {
  id: string;
  endpoint_id: string;
  message_id: string;
  type: string;
  payload: WebhookPayload;
  status: DeliveryStatus;
  attempts: number;
  next_attempt_at: Date;
  lease_until: Date | null;
  last_response_code: number | null;
  last_error: string | null;
  created_at: Date;
  completed_at: Date | null;
}

export interface DeliveryAttempt {
  attemptedAt: Date;
  status: 'succeeded' | 'failed';
  responseCode: number | null;
  durationMs: number;
  error: string | null;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export const isUuid = (id: string) => UUID.test(id);

export const mapEndpoint = (r: DbEndpointRow): WebhookEndpoint => ({
  id: r.id,
  userId: r.user_id,
  url: r.url,
  events: r.events,
  description: r.description,
  status: r.status,
  disabledReason: r.disabled_reason,
  failingSince: r.failing_since,
  createdAt: r.created_at,
});

const mapDelivery = (r: DbDeliveryRow): WebhookDelivery => ({
  id: r.id,
  endpointId: r.endpoint_id,
  messageId: r.message_id,
  type: r.type,
  payload: r.payload,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  lastResponseCode: r.last_response_code,
  lastError: r.last_error,
  createdAt: r.created_at,
  completedAt: r.completed_at,
});

export async function insertEndpoint(db: Db, e: { userId: string; url: string; events: string[]; description: string | null; secret: string }): Promise<WebhookEndpoint> {
  const [row] = await db<DbEndpointRow>('webhook_endpoints')
    .insert({ user_id: e.userId, url: e.url, events: e.events, description: e.description, secret: e.secret })
    .returning('*');
  return mapEndpoint(row as DbEndpointRow);
}

export async function listEndpoints(db: Db, userId: string): Promise<WebhookEndpoint[]> {
  return (await db<DbEndpointRow>('webhook_endpoints').where({ user_id: userId }).orderBy('created_at', 'desc')).map((r) => mapEndpoint(r as DbEndpointRow));
}

export async function findEndpoint(db: Db | Trx, id: string): Promise<DbEndpointRow | undefined> {
  if (!isUuid(id)) return undefined;
  return db<DbEndpointRow>('webhook_endpoints').where({ id }).first() as Promise<DbEndpointRow | undefined>;
}

export async function deleteEndpoint(db: Db, id: string): Promise<void> {
  await db('webhook_endpoints').where({ id }).delete();
}

/** Enabled endpoints of the user subscribed to `type`. */
export async function subscribedEndpoints(trx: Db | Trx, userId: string, type: string): Promise<DbEndpointRow[]> {
  return trx<DbEndpointRow>('webhook_endpoints').where({ user_id: userId, status: 'enabled' }).whereRaw('? = ANY(events)', [type]) as Promise<DbEndpointRow[]>;
}

/** One outbox row per endpoint; the same message id twice for one endpoint is ignored. */
export async function insertDeliveries(trx: Db | Trx, rows: Array<{ endpointId: string; messageId: string; payload: WebhookPayload }>): Promise<number> {
  if (rows.length === 0) return 0;
  const inserted = await trx('webhook_deliveries')
    .insert(rows.map((r) => ({ endpoint_id: r.endpointId, message_id: r.messageId, type: r.payload.type, payload: JSON.stringify(r.payload) })))
    .onConflict(['endpoint_id', 'message_id'])
    .ignore()
    .returning('id');
  return inserted.length;
}

export async function listDeliveries(db: Db, endpointId: string, limit: number, before?: { createdAt: Date; id: string }): Promise<WebhookDelivery[]> {
  const q = db<DbDeliveryRow>('webhook_deliveries')
    .where({ endpoint_id: endpointId })
    .orderBy([
      { column: 'created_at', order: 'desc' },
      { column: 'id', order: 'desc' },
    ])
    .limit(limit);
  if (before) q.whereRaw('(created_at, id) < (?, ?)', [before.createdAt, before.id]);
  return (await q).map((r) => mapDelivery(r as DbDeliveryRow));
}

export async function findDelivery(db: Db, endpointId: string, id: string): Promise<WebhookDelivery | undefined> {
  if (!isUuid(id)) return undefined;
  const row = await db<DbDeliveryRow>('webhook_deliveries').where({ id, endpoint_id: endpointId }).first();
  return row ? mapDelivery(row as DbDeliveryRow) : undefined;
}

/** Attempts of several deliveries, oldest first, grouped by delivery id. */
export async function attemptsOf(db: Db, deliveryIds: string[]): Promise<Map<string, DeliveryAttempt[]>> {
  const out = new Map<string, DeliveryAttempt[]>();
  if (deliveryIds.length === 0) return out;
  const rows = await db('webhook_delivery_attempts').whereIn('delivery_id', deliveryIds).orderBy('id');
  for (const r of rows as Array<{ delivery_id: string; attempted_at: Date; status: 'succeeded' | 'failed'; response_code: number | null; duration_ms: number; error: string | null }>) {
    const list = out.get(r.delivery_id) ?? [];
    list.push({ attemptedAt: r.attempted_at, status: r.status, responseCode: r.response_code, durationMs: r.duration_ms, error: r.error });
    out.set(r.delivery_id, list);
  }
  return out;
}

/** Makes a finished delivery due again now (manual retry). False when it is being delivered right now. */
export async function requeueDelivery(db: Db, id: string, now: Date): Promise<boolean> {
  const n = await db('webhook_deliveries')
    .where({ id })
    .whereIn('status', ['pending', 'succeeded', 'failed'])
    .update({ status: 'pending', next_attempt_at: now, completed_at: null, lease_until: null });
  return n > 0;
}

/**
 * Claims due deliveries of enabled endpoints (FOR UPDATE SKIP LOCKED): `pending` ones due now and
 * `delivering` ones whose lease ran out (the sender died: at-least-once, so they go again).
 */
export async function claimDueDeliveries(db: Db, now: Date, limit: number, leaseMs: number): Promise<Array<WebhookDelivery & { url: string; secret: string; userId: string; failingSince: Date | null }>> {
  const r = await db.raw<{ rows: Array<DbDeliveryRow & { url: string; secret: string; user_id: string; failing_since: Date | null }> }>(
    `WITH due AS (
       SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id
        WHERE e.status = 'enabled'
          AND ((d.status = 'pending' AND d.next_attempt_at <= :now) OR (d.status = 'delivering' AND d.lease_until < :now))
        ORDER BY d.next_attempt_at LIMIT :limit FOR UPDATE OF d SKIP LOCKED)
     UPDATE webhook_deliveries w SET status = 'delivering', attempts = w.attempts + 1, lease_until = :lease
       FROM due, webhook_endpoints e
      WHERE w.id = due.id AND e.id = w.endpoint_id
      RETURNING w.*, e.url, e.secret, e.user_id, e.failing_since`,
    { now, limit, lease: new Date(now.getTime() + leaseMs) },
  );
  return r.rows.map((row) => ({ ...mapDelivery(row), url: row.url, secret: row.secret, userId: row.user_id, failingSince: row.failing_since }));
}

export async function recordAttempt(db: Db | Trx, deliveryId: string, a: Omit<DeliveryAttempt, 'attemptedAt'>): Promise<void> {
  await db('webhook_delivery_attempts').insert({ delivery_id: deliveryId, status: a.status, response_code: a.responseCode, duration_ms: a.durationMs, error: a.error });
}

export async function finishDelivery(db: Db | Trx, id: string, f: { status: DeliveryStatus; responseCode: number | null; error: string | null; nextAttemptAt?: Date }): Promise<void> {
  await db('webhook_deliveries')
    .where({ id })
    .update({
      status: f.status,
      last_response_code: f.responseCode,
      last_error: f.error,
      lease_until: null,
      ...(f.nextAttemptAt ? { next_attempt_at: f.nextAttemptAt } : {}),
      ...(f.status === 'succeeded' || f.status === 'failed' ? { completed_at: db.fn.now() } : {}),
    });
}

/** Records the endpoint's health after an attempt: null = healthy, else the start of the failing streak (kept if set). */
export async function setEndpointFailing(db: Db | Trx, id: string, since: Date | null): Promise<void> {
  if (since === null) await db('webhook_endpoints').where({ id }).update({ failing_since: null });
  else await db('webhook_endpoints').where({ id }).whereNull('failing_since').update({ failing_since: since });
}

/** Disables an enabled endpoint and fails its outstanding deliveries. True when this call disabled it. */
export async function disableEndpoint(trx: Trx, id: string, reason: string): Promise<boolean> {
  const n = await trx('webhook_endpoints').where({ id, status: 'enabled' }).update({ status: 'disabled', disabled_reason: reason });
  if (n === 0) return false;
  await trx('webhook_deliveries')
    .where({ endpoint_id: id })
    .whereIn('status', ['pending', 'delivering'])
    .update({ status: 'failed', last_error: 'endpoint disabled', completed_at: trx.fn.now(), lease_until: null });
  return true;
}
