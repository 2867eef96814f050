import crypto from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { z } from 'zod';
import { inTransaction, type Db, type Trx } from './db.ts';
import type { Logger } from 'pino';
import { internalError, invalidRequest, StripeApiError, unrecognizedUrl } from './stripe-errors.ts';
import type { RequestContext } from './stripe-emulator-events.ts';
import { canonicalJson, parseStripeForm, type FormHash } from './stripe-form.ts';
import { newId } from './stripe-ids.ts';
import { parseParams, str } from './stripe-params.ts';
import {
  CreateCheckoutSessionParams,
  CreateCustomerParams,
  CreateRefundParams,
  ExpandOnlyParams,
  ListCheckoutSessionsParams,
  ListCustomersParams,
  ListEventsParams,
  ListLineItemsParams,
  ListRefundsParams,
} from './stripe-emulator-schemas.ts';
import type { StripeEmulatorService } from './stripe-emulator-service.ts';
import {
  AttachPaymentMethodParams,
  CreatePaymentIntentParams,
  CreatePaymentMethodParams,
  ListPaymentMethodsParams,
  type OffSessionPayments,
} from './off-session-payments.ts';
import * as store from './stripe-emulator-store.ts';
import type { BillingService } from './billing-service.ts';
import * as B from './billing-schemas.ts';

/**
 * The `/v1` HTTP surface: Stripe's authentication, form-encoded parameters, JSON responses,
 * idempotency keys and error bodies (https://docs.stripe.com/api). Each route validates its
 * parameters with a strict schema, then calls the service.
 */

type Q = Db | Trx;
const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

const RetrievePaymentIntentParams = z.strictObject({ client_secret: str(500).optional(), expand: ExpandOnlyParams.shape.expand });

export interface StripeApiRouterDeps {
  db: Db;
  logger: Logger;
  service: StripeEmulatorService;
  billing: BillingService;
  clock: () => Date;
  /** Sent as `Stripe-Version` when the request names none. */
  apiVersion: string;
  /** Saved cards and off-session PaymentIntents (src/off-session-payments.ts). */
  offSession?: OffSessionPayments;
}

/** Masks an API key the way Stripe echoes it in errors (`sk_test_****…1234`). */
function maskKey(key: string): string {
  if (key.length <= 12) return '*'.repeat(key.length);
  return `${key.slice(0, 8)}${'*'.repeat(Math.min(key.length - 12, 24))}${key.slice(-4)}`;
}

/**
 * The secret key of a request: `Authorization: Bearer sk_test_…`, or HTTP Basic with the key as
 * user name (both accepted by Stripe, https://docs.stripe.com/api/authentication).
 */
function apiKeyOf(req: Request): string | undefined {
  const header = req.get('authorization');
  if (!header) return undefined;
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (bearer) return bearer[1];
  const basic = /^Basic\s+(\S+)\s*$/i.exec(header);
  if (basic) return Buffer.from(basic[1]!, 'base64').toString('utf8').split(':')[0];
  return header.trim();
}

function authError(key: string | undefined): StripeApiError {
  const err = key
    ? invalidRequest(`Invalid API Key provided: ${maskKey(key)}`, { status: 401 })
    : invalidRequest(
        "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for details, or we can help at https://support.stripe.com/.",
        { status: 401 },
      );
  return new StripeApiError(401, err.body, { 'WWW-Authenticate': 'Bearer realm="Stripe"' });
}

function idempotencyError(message: string): StripeApiError {
  return new StripeApiError(400, { type: 'idempotency_error', message });
}

/** Creates the Express router for `/v1/...`. */
export function createStripeApiRouter(deps: StripeApiRouterDeps): express.Router {
  const { db, logger, service, billing, clock, apiVersion } = deps;
  const router = express.Router();

  router.use('/v1', (req: Request, res: Response, next: NextFunction) => {
    const requestId = newId('request');
    const started = Date.now();
    res.locals.requestId = requestId;
    res.set({
      'Request-Id': requestId,
      'Stripe-Version': req.get('stripe-version') ?? apiVersion,
      'Cache-Control': 'no-cache, no-store',
    });
    res.on('finish', () => {
      logger.debug(
        { requestId, method: req.method, path: req.originalUrl.split('?')[0], status: res.statusCode, ms: Date.now() - started },
        'stripe emulator: api request',
      );
    });
    const key = apiKeyOf(req);
    if (!key || !/^sk_test_\w+$/.test(key)) throw authError(key);
    next();
  });
  router.use('/v1', express.text({ type: () => true, limit: '1mb' }));

  function sendJson(res: Response, status: number, body: unknown): void {
    res.status(status).type('application/json').send(`${JSON.stringify(body, null, 2)}\n`);
  }

  /** Query string and body, merged (Stripe reads both); body keys win. */
  function rawParams(req: Request): FormHash {
    const query = req.originalUrl.includes('?') ? req.originalUrl.slice(req.originalUrl.indexOf('?') + 1) : '';
    const body = typeof req.body === 'string' ? req.body : '';
    if (body.trim() !== '') {
      const type = (req.get('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
      if (type !== '' && type !== 'application/x-www-form-urlencoded') {
        throw invalidRequest(
          `Invalid request: unsupported Content-Type ${type}. If error persists and you need assistance, please contact support@stripe.com.`,
        );
      }
    }
    return parseStripeForm([query, body].filter((s) => s !== '').join('&'));
  }

  /**
   * Runs a POST under its `Idempotency-Key` (https://docs.stripe.com/api/idempotent_requests):
   * the first response (success or 4xx) is stored with the key in the same transaction as the
   * request's effects; the same key with the same endpoint and params replays it
   * (`Idempotent-Replayed: true`); different params or endpoint → 400 `idempotency_error`.
   * Requests that fail parameter validation never reach here, so nothing is stored for them,
   * as with Stripe. Keys expire after 24 hours.
   */
  async function runIdempotent(
    key: string,
    req: Request,
    requestId: string,
    raw: FormHash,
    run: (trx: Trx) => Promise<unknown>,
  ): Promise<{ status: number; body: unknown; replayedFrom: string | null }> {
    if (key.length > 255) {
      throw invalidRequest(`Invalid Idempotency-Key: must be at most 255 characters (got ${key.length}).`, { param: 'Idempotency-Key' });
    }
    const paramsHash = crypto.createHash('sha256').update(canonicalJson(raw)).digest('hex');
    const now = clock();
    return inTransaction(db, async (trx) => {
      const existing = await store.reserveIdempotencyKey(
        trx,
        { key, method: req.method, path: req.path, params_hash: paramsHash, request_id: requestId, created_at: now },
        new Date(now.getTime() - IDEMPOTENCY_TTL_MS),
      );
      if (existing) {
        if (existing.method !== req.method || existing.path !== req.path) {
          throw idempotencyError(
            `Keys for idempotent requests can only be used for the same endpoint they were first used for ('${existing.method} ${existing.path}' vs '${req.method} ${req.path}'). Try using a key other than '${key}' if you meant to execute a different request.`,
          );
        }
        if (existing.params_hash !== paramsHash) {
          throw idempotencyError(
            `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${key}' if you meant to execute a different request.`,
          );
        }
        return { status: existing.status_code ?? 200, body: existing.response, replayedFrom: existing.request_id };
      }
      let status = 200;
      let body: unknown;
      try {
        body = await trx.transaction((savepoint) => run(savepoint));
      } catch (err) {
        // A 4xx is the endpoint's answer and is replayed like a success; anything else rolls the
        // whole request back (key included) so a retry runs again.
        if (!(err instanceof StripeApiError) || err.status >= 500) throw err;
        status = err.status;
        body = err.toJSON();
      }
      await store.saveIdempotentResponse(trx, key, status, body);
      return { status, body, replayedFrom: null };
    });
  }

  function get<S extends z.ZodType>(path: string, schema: S, handler: (q: Q, params: z.output<S>, req: Request) => Promise<unknown>): void {
    router.get(path, async (req, res) => {
      const params = parseParams(schema, rawParams(req));
      sendJson(res, 200, await handler(db, params, req));
    });
  }

  function post<S extends z.ZodType>(
    path: string,
    schema: S,
    handler: (q: Trx, ctx: RequestContext, params: z.output<S>, req: Request) => Promise<unknown>,
  ): void {
    router.post(path, async (req, res) => {
      const requestId = res.locals.requestId as string;
      const raw = rawParams(req);
      const params = parseParams(schema, raw);
      const key = req.get('idempotency-key');
      const ctx: RequestContext = { requestId, idempotencyKey: key ?? null };
      if (key === undefined) {
        sendJson(res, 200, await inTransaction(db, (trx) => handler(trx, ctx, params, req)));
        return;
      }
      const result = await runIdempotent(key, req, requestId, raw, (trx) => handler(trx, ctx, params, req));
      res.set('Idempotency-Key', key);
      if (result.replayedFrom) res.set({ 'Idempotent-Replayed': 'true', 'Original-Request': result.replayedFrom });
      sendJson(res, result.status, result.body);
    });
  }

  const id = (req: Request): string => String(req.params.id);

  /** `expand[]` on Billing objects: `latest_invoice`, `customer` (subscriptions), `subscription` is not expandable here. */
  async function expandBilling(q: Q, obj: Record<string, unknown>, paths: string[] | undefined): Promise<Record<string, unknown>> {
    if (!paths || paths.length === 0) return obj;
    const out = { ...obj };
    for (const path of paths) {
      if (path === 'latest_invoice' && typeof obj.latest_invoice === 'string') out.latest_invoice = await billing.get(q, 'invoice', obj.latest_invoice);
      else if (path === 'customer' && typeof obj.customer === 'string') out.customer = await service.retrieveCustomer(q, obj.customer);
      else throw invalidRequest(`This property cannot be expanded (${path}).`, { param: 'expand' });
    }
    return out;
  }

  post('/v1/customers', CreateCustomerParams, (q, ctx, p) => service.createCustomer(q, ctx, p));
  get('/v1/customers', ListCustomersParams, (q, p) => service.listCustomers(q, p));
  get('/v1/customers/:id', ExpandOnlyParams, (q, p, req) => service.retrieveCustomer(q, id(req), p.expand));
  router.delete('/v1/customers/:id', async (req, res) => {
    const requestId = res.locals.requestId as string;
    sendJson(res, 200, await inTransaction(db, (trx) => service.deleteCustomer(trx, { requestId, idempotencyKey: req.get('idempotency-key') ?? null }, id(req))));
  });

  post('/v1/checkout/sessions', CreateCheckoutSessionParams, (q, ctx, p) => service.createSession(q, ctx, p));
  get('/v1/checkout/sessions', ListCheckoutSessionsParams, (q, p) => service.listSessions(q, p));
  get('/v1/checkout/sessions/:id', ExpandOnlyParams, (q, p, req) => service.retrieveSession(q, id(req), p.expand));
  post('/v1/checkout/sessions/:id/expire', ExpandOnlyParams, (q, ctx, p, req) => service.expireSession(q, ctx, id(req), p.expand));
  get('/v1/checkout/sessions/:id/line_items', ListLineItemsParams, (q, p, req) => service.listSessionLineItems(q, id(req), p));

  get('/v1/payment_intents/:id', RetrievePaymentIntentParams, (q, p, req) => service.retrievePaymentIntent(q, id(req), p.expand));
  get('/v1/charges/:id', ExpandOnlyParams, (q, p, req) => service.retrieveCharge(q, id(req), p.expand));

  post('/v1/refunds', CreateRefundParams, (q, ctx, p) => service.createRefund(q, ctx, p));
  get('/v1/refunds', ListRefundsParams, (q, p) => service.listRefunds(q, p));
  get('/v1/refunds/:id', ExpandOnlyParams, (q, p, req) => service.retrieveRefund(q, id(req), p.expand));

  // Stripe Billing (billing-service.ts)
  post('/v1/products', B.CreateProductParams, (q, ctx, p) => billing.createProduct(q, ctx, p));
  get('/v1/products/:id', ExpandOnlyParams, (q, _p, req) => billing.get(q, 'product', id(req)));
  post('/v1/prices', B.CreatePriceParams, (q, ctx, p) => billing.createPrice(q, ctx, p));
  get('/v1/prices', B.ListPricesParams, (q, p) => billing.listPrices(q, p));
  get('/v1/prices/:id', ExpandOnlyParams, (q, _p, req) => billing.get(q, 'price', id(req)));
  get('/v1/subscriptions', B.ListSubscriptionsParams, async (q, p) => {
    const status = p.status === 'all' || p.status === 'ended' ? undefined : p.status;
    const page = await billing.list(q, 'subscription', { customer_id: p.customer, test_clock_id: p.test_clock, status }, p.limit ?? 10, p.starting_after);
    if (p.status === undefined) page.data = page.data.filter((s) => s.status !== 'canceled');
    if (p.status === 'ended') page.data = page.data.filter((s) => s.status === 'canceled');
    return service.expand(q, page, p.expand);
  });
  get('/v1/subscriptions/:id', ExpandOnlyParams, async (q, p, req) => expandBilling(q, await billing.get(q, 'subscription', id(req)), p.expand));
  post('/v1/subscriptions/:id', B.UpdateSubscriptionParams, async (q, ctx, p, req) => expandBilling(q, await billing.updateSubscription(q, ctx, id(req), p), p.expand));
  router.delete('/v1/subscriptions/:id', async (req, res) => {
    const requestId = res.locals.requestId as string;
    const p = parseParams(B.CancelSubscriptionParams, rawParams(req));
    sendJson(res, 200, await inTransaction(db, async (trx) => expandBilling(trx, await billing.cancelSubscription(trx, { requestId, idempotencyKey: req.get('idempotency-key') ?? null }, id(req)), p.expand)));
  });
  get('/v1/invoices', B.ListInvoicesParams, (q, p) => billing.list(q, 'invoice', { customer_id: p.customer, subscription_id: p.subscription, status: p.status }, p.limit ?? 10, p.starting_after));
  get('/v1/invoices/:id', ExpandOnlyParams, async (q, p, req) => expandBilling(q, await billing.get(q, 'invoice', id(req)), p.expand));
  post('/v1/invoices/:id/pay', ExpandOnlyParams, (q, ctx, _p, req) => billing.payInvoice(q, ctx, id(req)));
  post('/v1/billing_portal/sessions', B.CreatePortalSessionParams, (q, ctx, p) => billing.createPortalSession(q, ctx, p));
  post('/v1/test_helpers/test_clocks', B.CreateTestClockParams, (q, ctx, p) => billing.createTestClock(q, ctx, p));
  get('/v1/test_helpers/test_clocks', B.ListParams, (q, p) => billing.list(q, 'test_helpers.test_clock', {}, p.limit ?? 10, p.starting_after));
  get('/v1/test_helpers/test_clocks/:id', ExpandOnlyParams, (q, _p, req) => billing.get(q, 'test_helpers.test_clock', id(req)));
  post('/v1/test_helpers/test_clocks/:id/advance', B.AdvanceTestClockParams, (q, ctx, p, req) => billing.advanceTestClock(q, ctx, id(req), p.frozen_time));

  get('/v1/events', ListEventsParams, (q, p) => service.listEvents(q, p));

  const { offSession } = deps;
  if (offSession) {
    post('/v1/payment_methods', CreatePaymentMethodParams, (q, ctx, p) => offSession.createPaymentMethod(q, ctx, p));
    get('/v1/payment_methods', ListPaymentMethodsParams, (q, p) => offSession.listPaymentMethods(q, p));
    get('/v1/payment_methods/:id', ExpandOnlyParams, (q, _p, req) => offSession.retrievePaymentMethod(q, id(req)));
    post('/v1/payment_methods/:id/attach', AttachPaymentMethodParams, (q, ctx, p, req) => offSession.attachPaymentMethod(q, ctx, id(req), p));
    post('/v1/payment_methods/:id/detach', ExpandOnlyParams, (q, ctx, _p, req) => offSession.detachPaymentMethod(q, ctx, id(req)));
    post('/v1/payment_intents', CreatePaymentIntentParams, (q, ctx, p) => offSession.createPaymentIntent(q, ctx, p));
  }
  get('/v1/events/:id', ExpandOnlyParams, (q, p, req) => service.retrieveEvent(q, id(req), p.expand));

  router.use('/v1', (req: Request) => {
    throw unrecognizedUrl(req.method, req.originalUrl.split('?')[0]!);
  });

  router.use('/v1', (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let error: StripeApiError;
    if (err instanceof StripeApiError) {
      error = err;
    } else if (err && typeof err === 'object' && 'status' in err && typeof err.status === 'number' && err.status >= 400 && err.status < 500) {
      // body-parser errors (payload too large, bad encoding)
      error = invalidRequest(`Invalid request: ${(err as unknown as Error).message}`, { status: err.status });
    } else {
      logger.error({ err, method: req.method, path: req.originalUrl.split('?')[0], requestId: res.locals.requestId }, 'stripe emulator: internal error');
      error = internalError();
    }
    res.set(error.headers);
    sendJson(res, error.status, error.toJSON());
  });

  return router;
}
