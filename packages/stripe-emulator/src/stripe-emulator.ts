import http from 'node:http';
import { createOffSessionPayments } from './off-session-payments.ts';
import type { AddressInfo } from 'node:net';
import express, { type NextFunction, type Request, type Response } from 'express';
import Stripe from 'stripe';
import type { Db } from './db.ts';
import type { Logger } from 'pino';
import { createCheckoutPageRouter } from './checkout-page-router.ts';
import { createCheckoutService } from './checkout-service.ts';
import { createBillingService } from './billing-service.ts';
import { createBillingPortalRouter } from './billing-portal-page.ts';
import { createEventRecorder } from './stripe-emulator-events.ts';
import { createStripeApiRouter } from './stripe-emulator-router.ts';
import { createStripeEmulatorService } from './stripe-emulator-service.ts';
import { createWebhookDelivery, DEFAULT_RETRY, type RetryOptions, type WebhookEndpoint } from './webhook-delivery.ts';

export { resolveEmulatorWebhookSecret } from './webhook-secret.ts';
export type { RetryOptions, WebhookEndpoint } from './webhook-delivery.ts';

/**
 * The built-in Stripe emulator: the subset of Stripe's API Tally uses (Checkout Sessions,
 * PaymentIntents, Charges, Refunds, Customers, Events), a hosted test checkout page, and signed
 * webhooks with retries. Point the official SDK at it with
 * `new Stripe('sk_test_…', {host, port, protocol: 'http'})`; all state is in Postgres,
 * in the tables of its own schema `stripe_emulator` (see {@link migrateStripeEmulator}).
 */

/** The API version the emulator speaks and stamps on events: the one the installed SDK pins. */
export const EMULATOR_API_VERSION: string = Stripe.API_VERSION;

export interface StripeEmulatorDeps {
  db: Db;
  logger: Logger;
  /** Base URL browsers reach the emulator at, no trailing slash (e.g. `http://localhost:12111`); used for `session.url`. */
  publicUrl: string;
  /** Where to send events, and the `whsec_…` secret to sign them with; undefined = record events, send none. */
  webhook: WebhookEndpoint | undefined;
  /** The emulator's "now" (object timestamps, expiry, retry schedule). Default: `() => new Date()`. */
  clock?: () => Date;
  /** Webhook retry schedule; tests pass e.g. `{baseMs: 10, maxAttempts: 5}`. Default {@link DEFAULT_RETRY}. */
  retry?: Partial<RetryOptions>;
  /** How often the delivery loop polls, in ms. Default 250. */
  pollMs?: number;
}

export interface StripeEmulator {
  /** The emulator's Express app: `/v1/...` API and the `/c/pay/:id` checkout page. */
  app: express.Express;
  /** Starts the background loop that expires overdue sessions and sends due webhooks. Idempotent. */
  startDelivery(): void;
  /**
   * Expires overdue sessions, then sends every webhook delivery due now (once each), awaiting
   * the sends. Returns the number of delivery attempts made (successful or not).
   */
  deliverDue(): Promise<number>;
  /** Stops the loop and waits for a send in flight. The database stays open (the caller owns it). */
  stop(): Promise<void>;
}

const SWEEP_EVERY_MS = 1000;

/**
 * Builds the emulator on `deps.db` (migrated with {@link migrateStripeEmulator}). No side
 * effects until {@link StripeEmulator.startDelivery} or a request.
 */
export function createStripeEmulator(deps: StripeEmulatorDeps): StripeEmulator {
  const clock = deps.clock ?? (() => new Date());
  const publicUrl = deps.publicUrl.replace(/\/+$/, '');
  const logger = deps.logger.child({ component: 'stripe-emulator' });
  const retry: RetryOptions = { ...DEFAULT_RETRY, ...deps.retry };
  const recordEvent = createEventRecorder({ webhookUrl: deps.webhook?.url, apiVersion: EMULATOR_API_VERSION, clock });
  const billing = createBillingService({ db: deps.db, publicUrl, clock, recordEvent });
  const service = createStripeEmulatorService({ db: deps.db, logger, publicUrl, clock, recordEvent, billing });
  const checkout = createCheckoutService({ db: deps.db, publicUrl, clock, recordEvent, service, billing });

  let lastSweep = 0;
  const delivery = createWebhookDelivery({
    db: deps.db,
    logger,
    webhook: deps.webhook,
    clock,
    retry,
    pollMs: deps.pollMs ?? 250,
    beforeTick: async () => {
      if (Date.now() - lastSweep < SWEEP_EVERY_MS) return;
      lastSweep = Date.now();
      await service.sweepExpiredSessions();
    },
  });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  const offSession = createOffSessionPayments({ db: deps.db, clock, recordEvent, publicUrl });
  app.use(createStripeApiRouter({ db: deps.db, logger, service, billing, clock, apiVersion: EMULATOR_API_VERSION, offSession }));
  app.use(createCheckoutPageRouter(checkout, logger));
  app.use(createBillingPortalRouter({ db: deps.db, billing, clock, logger }));
  app.get('/', (_req, res) => {
    res.type('text/plain').send(`Tally's Stripe emulator (API version ${EMULATOR_API_VERSION}). API under /v1, checkout pages under /c/pay/:id, customer portal under /p/session/:id.\n`);
  });
  app.use((_req: Request, res: Response) => {
    res.status(404).type('text/plain').send('Not found\n');
  });
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    const status = (err as { status?: unknown }).status;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      // body-parser's refusals (form too large, too many fields, bad encoding)
      res.status(status).type('text/plain').send('The form could not be read.\n');
      return;
    }
    logger.error({ err, method: req.method, path: req.path }, 'stripe emulator: page error');
    res.status(500).type('text/plain').send('Something went wrong in the Stripe emulator.\n');
  });

  return {
    app,
    startDelivery: () => delivery.start(),
    async deliverDue() {
      await service.sweepExpiredSessions();
      return delivery.deliverDue();
    },
    stop: () => delivery.stop(),
  };
}

export interface StripeEmulatorServer {
  /** Base URL the server listens on, e.g. `http://127.0.0.1:12111`. */
  url: string;
  port: number;
  emulator: StripeEmulator;
  /** Stops delivery, then closes the server and its connections. */
  close(): Promise<void>;
}

export type StripeEmulatorServerOptions = Omit<StripeEmulatorDeps, 'publicUrl'> & {
  /** 0 = an ephemeral port. */
  port: number;
  /** Interface to listen on. Default `127.0.0.1`. */
  host?: string;
  /** Default: the URL the server listens on (with `localhost` for a wildcard host). */
  publicUrl?: string;
  /** Start the webhook delivery loop. Default true; tests may drive {@link StripeEmulator.deliverDue} instead. */
  deliver?: boolean;
};

function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return 'localhost';
  return host.includes(':') ? `[${host}]` : host;
}

/**
 * Starts the emulator on its own HTTP server (`port` 0 = ephemeral) and, unless `deliver` is
 * false, its delivery loop.
 * @throws when the port cannot be bound (e.g. EADDRINUSE).
 */
export async function startStripeEmulatorServer(opts: StripeEmulatorServerOptions): Promise<StripeEmulatorServer> {
  const host = opts.host ?? '127.0.0.1';
  const server = http.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://${urlHost(host)}:${port}`;
  const { deliver, host: _host, port: _port, ...deps } = opts;
  const emulator = createStripeEmulator({ ...deps, publicUrl: opts.publicUrl ?? url });
  server.on('request', emulator.app);
  if (deliver !== false) emulator.startDelivery();
  return {
    url,
    port,
    emulator,
    async close() {
      await emulator.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

/**
 * Where browsers reach a separately run emulator: the app's host name on the emulator port,
 * e.g. `APP_URL=http://localhost:3000` → `http://localhost:12111`.
 */
export function emulatorPublicUrl(config: { appUrl: string; stripe: { emulatorPort: number } }, port = config.stripe.emulatorPort): string {
  return `http://${new URL(config.appUrl).hostname}:${port}`;
}

/** The webhook endpoint the emulator posts to: the app's `/api/payments/webhook`. */
export function emulatorWebhookUrl(config: { appUrl: string }): string {
  return `${config.appUrl}/api/payments/webhook`;
}
