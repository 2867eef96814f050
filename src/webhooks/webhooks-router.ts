import express from 'express';
import { z } from 'zod';
import { requireAuth } from '../auth/auth-middleware.ts';
import { validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import { DeliveryJson, EndpointJson } from '../notifications/notifications-responses.ts';
import { decodeCursor, encodeCursor } from '../notifications/notifications-schemas.ts';
import { WEBHOOK_EVENT_TYPES } from './webhook-events.ts';
import { endpointJson, type WebhookService } from './webhook-service.ts';

const uuid = z.uuid({ error: 'is not an id this API produced' });

export const EndpointBody = z
  .object({
    url: z.string({ error: 'is required' }).max(2048, 'must be at most 2048 characters'),
    events: z
      .array(z.enum(WEBHOOK_EVENT_TYPES, { error: `must each be one of ${WEBHOOK_EVENT_TYPES.join(', ')}` }), { error: 'must be a list of event types' })
      .min(1, 'must name at least one event type'),
    description: z.string().max(200, 'must be at most 200 characters').nullable().optional(),
  })
  .strict();

const EndpointParams = z.object({ id: uuid }).strict();
const DeliveryParams = z.object({ id: uuid, deliveryId: uuid }).strict();
const DeliveriesQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).optional(), cursor: z.string().max(500).optional() }).strict();
const EmptyBody = z.object({}).strict();

/** `/api/webhook-endpoints*`: register, list, delete endpoints; their deliveries and retries. */
export function createWebhooksRouter(deps: { webhooks: WebhookService }): express.Router {
  const { webhooks } = deps;
  const api = express.Router();
  api.use('/webhook-endpoints', requireAuth);

  apiRoute(api, { method: 'get', path: '/webhook-endpoints/event-types', summary: 'The event types an endpoint can listen for', tags: ['webhook-endpoints'], auth: 'user', responses: { 200: z.object({ eventTypes: z.array(z.string()) }) } }, (_req, res) => {
    res.json({ eventTypes: WEBHOOK_EVENT_TYPES });
  });

  apiRoute(api, { method: 'post', path: '/webhook-endpoints', summary: 'Register an endpoint; its signing secret is shown only here', tags: ['webhook-endpoints'], auth: 'user', request: { body: EndpointBody }, responses: { 201: z.object({ endpoint: EndpointJson, secret: z.string() }) } }, async (req, res) => {
    const body = validate(EndpointBody, req);
    const { endpoint, secret } = await webhooks.createEndpoint(req.user!.id, body);
    res.status(201).location(`/api/webhook-endpoints/${endpoint.id}`).json({ endpoint: endpointJson(endpoint), secret });
  });

  apiRoute(api, { method: 'get', path: '/webhook-endpoints', summary: 'Your endpoints', tags: ['webhook-endpoints'], auth: 'user', responses: { 200: z.object({ endpoints: z.array(EndpointJson) }) } }, async (req, res) => {
    res.json({ endpoints: (await webhooks.listEndpoints(req.user!.id)).map(endpointJson) });
  });

  apiRoute(api, { method: 'get', path: '/webhook-endpoints/:id', summary: 'One endpoint', tags: ['webhook-endpoints'], auth: 'user', request: { params: EndpointParams }, responses: { 200: z.object({ endpoint: EndpointJson }) } }, async (req, res) => {
    const { id } = validate(EndpointParams, req, 'params');
    res.json({ endpoint: endpointJson(await webhooks.getEndpoint(req.user!.id, id)) });
  });

  apiRoute(api, { method: 'delete', path: '/webhook-endpoints/:id', summary: 'Delete an endpoint and its delivery log', tags: ['webhook-endpoints'], auth: 'user', request: { params: EndpointParams }, responses: { 204: { description: 'Deleted.' } } }, async (req, res) => {
    const { id } = validate(EndpointParams, req, 'params');
    await webhooks.deleteEndpoint(req.user!.id, id);
    res.status(204).end();
  });

  apiRoute(api, { method: 'get', path: '/webhook-endpoints/:id/deliveries', summary: 'Deliveries newest first, each with its attempts', tags: ['webhook-endpoints'], auth: 'user', request: { params: EndpointParams, query: DeliveriesQuery }, responses: { 200: z.object({ deliveries: z.array(DeliveryJson), nextCursor: z.string().nullable() }) } }, async (req, res) => {
    const { id } = validate(EndpointParams, req, 'params');
    const q = validate(DeliveriesQuery, req, 'query');
    const limit = q.limit ?? 50;
    const items = await webhooks.listDeliveries(req.user!.id, id, limit + 1, decodeCursor(q.cursor));
    const more = items.length > limit;
    if (more) items.pop();
    const last = items.at(-1);
    res.json({
      deliveries: items.map((d) => ({
        id: d.id,
        messageId: d.messageId,
        type: d.type,
        status: d.status,
        attempts: d.attempts,
        nextAttemptAt: d.status === 'pending' ? d.nextAttemptAt : null,
        lastResponseCode: d.lastResponseCode,
        lastError: d.lastError,
        createdAt: d.createdAt,
        completedAt: d.completedAt,
        payload: d.payload,
        attemptLog: d.attemptLog,
      })),
      nextCursor: more && last ? encodeCursor(last.createdAt, last.id) : null,
    });
  });

  apiRoute(api, { method: 'post', path: '/webhook-endpoints/:id/deliveries/:deliveryId/retry', summary: 'Send a delivery again (same webhook-id)', tags: ['webhook-endpoints'], auth: 'user', request: { params: DeliveryParams, body: EmptyBody }, responses: { 202: z.object({ delivery: z.object({ id: z.uuid(), status: z.string(), nextAttemptAt: z.iso.datetime({ offset: true }) }) }) } }, async (req, res) => {
    validate(EmptyBody, req);
    const { id, deliveryId } = validate(DeliveryParams, req, 'params');
    const d = await webhooks.retryDelivery(req.user!.id, id, deliveryId);
    res.status(202).json({ delivery: { id: d.id, status: d.status, nextAttemptAt: d.nextAttemptAt } });
  });

  return api;
}
