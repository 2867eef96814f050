import pg from 'pg';
import type express from 'express';
import { createApp, type AppDeps } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/logger.ts';
import { createLedger } from '../../src/ledger/ledger-service.ts';
import { createStripeClient } from '../../src/payments/stripe-client.ts';
import { createAuditLog } from '../../src/auth/audit-log.ts';
import { createSessionsService } from '../../src/auth/sessions-service.ts';
import { createNotificationServices, type NotificationServicesDeps } from '../../src/notifications/notifications-services.ts';
import { createTestDatabase, type TestDatabase } from './db.ts';

export interface TestApp {
  app: express.Express;
  deps: AppDeps;
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

type Overrides = Partial<AppDeps> | ((t: TestDatabase, config: Readonly<Config>) => Partial<AppDeps> | Promise<Partial<AppDeps>>);

/**
 * The whole app on a fresh database of its own, for supertest. `overrides` replaces deps
 * (e.g. a Stripe client pointed at a test emulator, or task services); as a function it gets the
 * test database and config first.
 */
export async function buildTestApp(
  options: { env?: Record<string, string>; overrides?: Overrides; notify?: Pick<NotificationServicesDeps, 'clock' | 'resolve' | 'transport'> } = {},
): Promise<TestApp> {
  const t = await createTestDatabase();
  const config = testConfig(options.env);
  const overrides = typeof options.overrides === 'function' ? await options.overrides(t, config) : options.overrides;
  const pgPool = new pg.Pool({ connectionString: t.url, max: 5 });
  const logger = createLogger('silent', { pretty: false });
  const stripe = overrides?.stripe ?? createStripeClient(config);
  const audit = createAuditLog(t.db);
  const notifications =
    overrides?.notifications ??
    createNotificationServices({
      config,
      db: t.db,
      pgPool,
      logger,
      stripe,
      ledger: overrides?.ledger ?? createLedger(t.db, options.notify?.clock ? { clock: options.notify.clock } : {}),
      sessions: createSessionsService({ db: t.db, audit }),
      audit,
      ...options.notify,
    });
  const deps: AppDeps = {
    config,
    db: t.db,
    pgPool,
    logger,
    stripe,
    sessionSecret: config.session.secret!,
    stripeWebhookSecret: config.stripe.webhookSecret!,
    tasks: { enqueue: async () => {} },
    ...overrides,
    ledger: notifications.ledger,
    notifications,
  };
  const app = createApp(deps);
  return {
    app,
    deps,
    t,
    async close() {
      await notifications.stop();
      await pgPool.end();
      await t.drop();
    },
  };
}
