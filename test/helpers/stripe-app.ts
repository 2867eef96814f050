import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Stripe from 'stripe';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import { startStripeEmulatorServer, type StripeEmulatorServer } from '@tally/stripe-emulator';
import type { Infrastructure } from '../../src/compose.ts';
import type { Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import type { NotificationTestHooks } from '../../src/notifications/notifications-services.ts';
import { createStripeClient } from '../../src/payments/stripe-client.ts';
import { buildTestApp, type TestApp } from './app.ts';
import type { TestDatabase } from './db.ts';
import { booksViolations } from './factories.ts';

/** The webhook signing secret shared by the app and the emulator in these tests. */
export const WEBHOOK_SECRET = 'whsec_test_secret';

export interface StripeTestApp {
  ta: TestApp;
  emulator: StripeEmulatorServer;
  /** The app's Stripe SDK client, pointed at the emulator. */
  stripe: Stripe;
  /** Where the app listens (APP_URL): success URLs and webhooks point here. */
  appUrl: string;
  close(): Promise<void>;
}

/** What a file may add to {@link startStripeTestApp}'s app. */
export interface StripeTestAppOptions {
  /** More environment variables (e.g. SMTP_URL, METRICS_TOKEN); APP_URL and STRIPE_WEBHOOK_SECRET are set already. */
  env?: Record<string, string>;
  /** Notification test hooks (e.g. a manual clock), passed to `buildTestApp`. */
  notify?: NotificationTestHooks;
  /** More infrastructure overrides (a mailer, a started queue), built after the emulator and the Stripe client. */
  overrides?: (t: TestDatabase, config: Readonly<Config>) => Partial<Infrastructure> | Promise<Partial<Infrastructure>>;
  /** The emulator's webhook retry schedule; default fast (`{ baseMs: 10, maxAttempts: 5 }`); `'default'` keeps the emulator's own. */
  retry?: { baseMs: number; maxAttempts: number } | 'default';
}

/**
 * The app on a real local port (so the emulator can deliver signed webhooks to it) with the
 * built-in Stripe emulator on the app's database; webhooks are delivered when a test calls
 * `emulator.emulator.deliverDue()`, retried fast unless `options.retry` says otherwise.
 */
export async function startStripeTestApp(options: StripeTestAppOptions = {}): Promise<StripeTestApp> {
  const server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  let emulator!: StripeEmulatorServer;
  let stripe!: Stripe;
  const retry = options.retry === 'default' ? undefined : (options.retry ?? { baseMs: 10, maxAttempts: 5 });
  const ta = await buildTestApp({
    env: { APP_URL: appUrl, STRIPE_WEBHOOK_SECRET: WEBHOOK_SECRET, ...options.env },
    ...(options.notify ? { notify: options.notify } : {}),
    overrides: async (t, config) => {
      emulator = await startStripeEmulatorServer({
        db: t.db,
        logger: createLogger('silent', { pretty: false }),
        port: 0,
        webhook: { url: `${appUrl}/api/payments/webhook`, secret: WEBHOOK_SECRET },
        deliver: false,
        ...(retry ? { retry } : {}),
      });
      stripe = createStripeClient(config, emulator.url);
      return { stripe, ...(await options.overrides?.(t, config)) };
    },
  });
  server.on('request', ta.app);
  return {
    ta,
    emulator,
    stripe,
    appUrl,
    async close() {
      await emulator.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await ta.close();
    },
  };
}

/**
 * Registers the file's hooks: starts a {@link startStripeTestApp} before all tests and hands it to
 * `take`, checks the ledger's books after each test (no violation), closes everything after all.
 */
export function useStripeTestApp(take: (app: StripeTestApp) => void): void {
  let app: StripeTestApp;
  beforeAll(async () => {
    app = await startStripeTestApp();
    take(app);
  });
  afterEach(async () => {
    expect(await booksViolations(app.ta.t.db)).toEqual([]);
  });
  afterAll(async () => {
    await app.close();
  });
}

/** Signs up a new user as `name` with a fresh address; the agent keeps the session. */
export async function signupAgent(app: TestApp['app'], name: string) {
  const agent = request.agent(app);
  const email = `${name.toLowerCase()}-${crypto.randomBytes(4).toString('hex')}@example.test`;
  const res = await agent.post('/api/auth/signup').send({ email, password: 'correct horse battery staple', name }).expect(201);
  return { agent, user: res.body.user as { id: string; email: string } };
}

/** The signed-in user's available credits (GET /api/credits/balance). */
export async function availableCredits(agent: request.Agent): Promise<number> {
  return (await agent.get('/api/credits/balance').expect(200)).body.available;
}

/** Pays a checkout session on the emulator's hosted page with a test card, as `name`; returns the response (303 to the success URL when paid). */
export function payOnCheckoutPage(emulator: StripeEmulatorServer, sessionId: string, card: string, name: string) {
  return request(emulator.emulator.app)
    .post(`/c/pay/${sessionId}`)
    .type('form')
    .send({ email: `${name.toLowerCase()}@example.test`, cardNumber: card, cardExpiry: '12 / 34', cardCvc: '123', billingName: name });
}
