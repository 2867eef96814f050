import pg from 'pg';
import type express from 'express';
import { createApp } from '../../src/app.ts';
import { createServices, type Infrastructure, type Services } from '../../src/compose.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createStripeClient } from '../../src/payments/stripe-client.ts';
import type { NotificationTestHooks } from '../../src/notifications/notifications-services.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';
import { checkResponsesAgainstOpenApi } from './openapi-responses.ts';

export interface TestApp {
  app: express.Express;
  /** The services the app was built on (the one ledger, payments, …). */
  deps: Services;
  t: TestDatabase;
  close(): Promise<void>;
}

/** Test configuration: fixed secrets, quiet logs; `env` overrides any variable. */
export function testConfig(env: Record<string, string> = {}): Readonly<Config> {
  return loadConfig({
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    APP_URL: 'http://localhost:3000',
    SESSION_SECRET: 'test-session-secret-test-session-secret-0123456789',
    DATA_DIR: '/tmp/tally-test-data',
    STRIPE_WEBHOOK_SECRET: 'whsec_test_secret',
    SIGNUP_MAX_PER_IP: '10000',
    ...env,
  });
}

type Overrides = Partial<Infrastructure> | ((t: TestDatabase, config: Readonly<Config>) => Partial<Infrastructure> | Promise<Partial<Infrastructure>>);

/**
 * The whole app on a fresh database of its own, for supertest, built by the composition root.
 * `overrides` replaces parts of the infrastructure (e.g. a Stripe client pointed at a test
 * emulator, or a started job queue); as a function it gets the test database and config first.
 */
export async function buildTestApp(options: { env?: Record<string, string>; overrides?: Overrides; notify?: NotificationTestHooks } = {}): Promise<TestApp> {
  const t = await createTestDatabase();
  const config = testConfig(options.env);
  const overrides = typeof options.overrides === 'function' ? await options.overrides(t, config) : options.overrides;
  const pgPool = new pg.Pool({ connectionString: t.url, max: 5 });
  const deps = createServices(config, t.db, {
    pgPool,
    logger: createLogger('silent', { pretty: false }),
    stripe: createStripeClient(config),
    sessionSecret: config.session.secret!,
    stripeWebhookSecret: config.stripe.webhookSecret!,
    queue: { enqueue: async () => {} },
    ...(options.notify ? { notify: options.notify } : {}),
    ...overrides,
  });
  // Every JSON response of a documented route is checked against /api/openapi.json (openapi-setup.ts).
  const app = checkResponsesAgainstOpenApi(createApp(deps));
  return {
    app,
    deps,
    t,
    async close() {
      await deps.autoRecharge.settled();
      await deps.notifications.stop();
      await pgPool.end();
      await t.drop();
    },
  };
}
