import crypto from 'node:crypto';
import type { Db, Trx } from '../db/database.ts';
import { ConflictError, NotFoundError, ValidationError } from '../http/errors.ts';
import type { WebhookEventType, WebhookPayload } from './webhook-events.ts';
import { assertWebhookUrlAllowed, UnsafeUrlError, type Resolver } from './url-guard.ts';
import * as store from './webhook-store.ts';

/** Endpoints one user may register. */
export const MAX_ENDPOINTS_PER_USER = 20;

export interface WebhookServiceDeps {
  db: Db;
  /** Production: https only, public addresses only (SSRF). */
  production: boolean;
  resolve?: Resolver;
  clock?: () => Date;
}

export type WebhookService = ReturnType<typeof createWebhookService>;

/** A Standard Webhooks signing secret: `whsec_` + base64 of 32 random bytes. */
export function generateSigningSecret(): string {
  return `whsec_${crypto.randomBytes(32).toString('base64')}`;
}

/**
 * Outbound webhooks (Standard Webhooks, https://www.standardwebhooks.com): users register endpoints
 * for event types; {@link emit} writes one delivery per subscribed endpoint in the caller's
 * transaction, and the webhook sender delivers them (at least once, signed, with backoff).
 */
export function createWebhookService(deps: WebhookServiceDeps) {
  const { db } = deps;
  const clock = deps.clock ?? (() => new Date());

  async function ownEndpoint(userId: string, id: string): Promise<store.DbEndpointRow> {
    const row = await store.findEndpoint(db, id);
    if (!row || row.user_id !== userId) throw new NotFoundError('webhook endpoint');
    return row;
  }

  return {
    /**
     * Registers an endpoint. The URL is checked against the SSRF rules (400 naming `body.url`).
     * Returns the endpoint and its signing secret, which is shown only this once.
     */
    async createEndpoint(userId: string, input: { url: string; events: WebhookEventType[]; description?: string | null }): Promise<{ endpoint: store.WebhookEndpoint; secret: string }> {
      try {
        await assertWebhookUrlAllowed(input.url, { production: deps.production, resolve: deps.resolve });
      } catch (err) {
        if (err instanceof UnsafeUrlError) throw new ValidationError([{ field: 'body.url', message: `is not allowed: ${err.reason}` }]);
        throw err;
      }
      const existing = await store.listEndpoints(db, userId);
      if (existing.length >= MAX_ENDPOINTS_PER_USER) throw new ConflictError(`You can register at most ${MAX_ENDPOINTS_PER_USER} webhook endpoints.`, 'too_many_endpoints');
      const secret = generateSigningSecret();
      const endpoint = await store.insertEndpoint(db, { userId, url: input.url, events: [...new Set(input.events)], description: input.description ?? null, secret });
      return { endpoint, secret };
    },

    listEndpoints(userId: string): Promise<store.WebhookEndpoint[]> {
      return store.listEndpoints(db, userId);
    },

    /** One of the user's endpoints; 404 when unknown or someone else's. */
    async getEndpoint(userId: string, id: string): Promise<store.WebhookEndpoint> {
      return store.mapEndpoint(await ownEndpoint(userId, id));
    },

    /** Deletes an endpoint and its delivery history; 404 when unknown or someone else's. */
    async deleteEndpoint(userId: string, id: string): Promise<void> {
      await ownEndpoint(userId, id);
      await store.deleteEndpoint(db, id);
    },

    /** The endpoint's deliveries, newest first, each with its attempts (status, response code, duration). */
    async listDeliveries(userId: string, endpointId: string, limit = 50, before?: { createdAt: Date; id: string }) {
      await ownEndpoint(userId, endpointId);
      const deliveries = await store.listDeliveries(db, endpointId, Math.min(Math.max(limit, 1), 200), before);
      const attempts = await store.attemptsOf(db, deliveries.map((d) => d.id));
      return deliveries.map((d) => ({ ...d, attemptLog: attempts.get(d.id) ?? [] }));
    },

    /**
     * Sends a delivery again now (same message id, so receivers can deduplicate). 404 when not the
     * user's; 409 while it is being delivered or when the endpoint is disabled.
     */
    async retryDelivery(userId: string, endpointId: string, deliveryId: string): Promise<store.WebhookDelivery> {
      const endpoint = await ownEndpoint(userId, endpointId);
      if (endpoint.status !== 'enabled') throw new ConflictError('This endpoint is disabled; register it again to receive events.', 'endpoint_disabled');
      const delivery = await store.findDelivery(db, endpointId, deliveryId);
      if (!delivery) throw new NotFoundError('delivery');
      if (!(await store.requeueDelivery(db, deliveryId, clock()))) throw new ConflictError('This delivery is being sent right now.', 'delivery_in_flight');
      return (await store.findDelivery(db, endpointId, deliveryId))!;
    },

    /**
     * Queues event `type` for every enabled endpoint of `userId` subscribed to it, in `trx` (the
     * transaction that causes the event, so a rollback sends nothing). `eventId` identifies the
     * event: emitting the same id again adds nothing. Returns how many deliveries were queued.
     */
    async emit(trx: Db | Trx, userId: string, type: WebhookEventType, data: Record<string, unknown>, eventId: string, at: Date = clock()): Promise<number> {
      const endpoints = await store.subscribedEndpoints(trx, userId, type);
      if (endpoints.length === 0) return 0;
      const messageId = `msg_${crypto.createHash('sha256').update(eventId).digest('base64url').slice(0, 27)}`;
      const payload: WebhookPayload = { type, timestamp: at.toISOString(), data };
      return store.insertDeliveries(trx, endpoints.map((e) => ({ endpointId: e.id, messageId, payload })));
    },
  };
}

/** An endpoint as the API shows it (never the secret after creation). */
export function endpointJson(e: store.WebhookEndpoint) {
  return { id: e.id, url: e.url, events: e.events, description: e.description, status: e.status, disabledReason: e.disabledReason, failingSince: e.failingSince, createdAt: e.createdAt };
}
