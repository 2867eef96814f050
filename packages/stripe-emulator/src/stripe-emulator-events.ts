import type { Db, Trx } from './db.ts';
import { newId } from './stripe-ids.ts';
import { insertDelivery, insertEvent, type DbEventRow } from './stripe-emulator-store.ts';

/**
 * Where an API call came from, recorded on the events it causes (`event.request`,
 * https://docs.stripe.com/api/events/object#event_object-request). Events caused by the hosted
 * checkout page or by time (expiry) have `id: null`.
 */
export interface RequestContext {
  requestId: string | null;
  idempotencyKey: string | null;
}

export const AUTOMATIC: RequestContext = { requestId: null, idempotencyKey: null };

export type RecordEvent = (
  q: Db | Trx,
  ctx: RequestContext,
  type: string,
  object: object,
  previousAttributes?: Record<string, unknown>,
) => Promise<DbEventRow>;

/**
 * Returns the function that records an event: the event row (with a snapshot of `object`) and,
 * when a webhook endpoint is configured, a pending delivery in the same transaction, so an event
 * and its webhook exist together or not at all (a transactional outbox).
 */
export function createEventRecorder(options: { webhookUrl: string | undefined; apiVersion: string; clock: () => Date }): RecordEvent {
  return async (q, ctx, type, object, previousAttributes) => {
    const now = options.clock();
    const event = await insertEvent(q, {
      id: newId('event'),
      created: now,
      type,
      api_version: options.apiVersion,
      data: previousAttributes
        ? { object: object as Record<string, unknown>, previous_attributes: previousAttributes }
        : { object: object as Record<string, unknown> },
      request_id: ctx.requestId,
      idempotency_key: ctx.idempotencyKey,
    });
    if (options.webhookUrl) {
      await insertDelivery(q, { event_id: event.id, endpoint_url: options.webhookUrl, next_attempt_at: now });
    }
    return event;
  };
}
