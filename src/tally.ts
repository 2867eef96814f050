import http from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import type { Config } from './config.ts';
import type { Logger } from './logger.ts';
import { createApp } from './app.ts';
import { createServices, createWorker } from './compose.ts';
import { migrateLatest, openDatabase, runSeeds } from './db/database.ts';
import { resolveSessionSecret } from './auth/session.ts';
import { ensureAdmin } from './auth/ensure-admin.ts';
import { createStripeClient } from './payments/stripe-client.ts';
import { startQueue } from './tasks/tasks-runtime.ts';

export interface RunningTally {
  /** Base URL the HTTP server listens on (e.g. http://127.0.0.1:3000). */
  url: string;
  port: number;
  databaseUrl: string;
  /** Stops accepting, drains in-flight requests, stops workers, closes the pool and the embedded server. */
  stop(): Promise<void>;
}

/**
 * Starts Tally: database (embedded when `DATABASE_URL` is unset), migrations and seeds, the Stripe
 * emulator when no Stripe key is set, the ledger sweeper, the in-process worker (unless
 * `WORKER=off`) and the HTTP server. Used by `npm start`, the e2e tests and the bench.
 */
export async function startTally(config: Readonly<Config>, logger: Logger): Promise<RunningTally> {
  const stops: Array<() => Promise<void>> = []; // run in reverse order on stop
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (err) {
        logger.error({ err }, 'error during shutdown');
      }
    }
  };
  try {
    const database = await openDatabase(config, logger);
    stops.push(() => database.close());
    const { db } = database;
    const applied = await migrateLatest(db);
    if (applied.length > 0) logger.info({ applied }, 'migrations applied');
    await runSeeds(db);
    if (config.admin) {
      const admin = await ensureAdmin(db, config.admin);
      if (admin.outcome !== 'unchanged') logger.info({ email: config.admin.email, outcome: admin.outcome }, 'admin from ADMIN_EMAIL');
    }

    const pgPool = new pg.Pool({ connectionString: database.url, max: 5 });
    stops.push(() => pgPool.end());

    const sessionSecret = resolveSessionSecret(config);
    // No Stripe key (development, tests, demo): run the emulator package in this process, on its
    // own port, like api.stripe.com. Imported only then, so production never loads it.
    const emulatorPackage = config.stripe.useEmulator ? await import('@tally/stripe-emulator') : undefined;
    const webhookSecret = emulatorPackage ? emulatorPackage.resolveEmulatorWebhookSecret(config) : config.stripe.webhookSecret!;
    let emulatorUrl: string | undefined;
    if (emulatorPackage && !config.stripe.apiBase) {
      const { emulatorPublicUrl, emulatorWebhookUrl, migrateStripeEmulator, startStripeEmulatorServer } = emulatorPackage;
      const emulatorApplied = await migrateStripeEmulator(db);
      if (emulatorApplied.length > 0) logger.info({ applied: emulatorApplied }, 'Stripe emulator migrations applied');
      const emulator = await startStripeEmulatorServer({
        db,
        logger,
        port: config.stripe.emulatorPort,
        host: config.host === '0.0.0.0' ? '0.0.0.0' : '127.0.0.1',
        ...(config.stripe.emulatorPort !== 0 ? { publicUrl: emulatorPublicUrl(config) } : {}),
        webhook: { url: emulatorWebhookUrl(config), secret: webhookSecret },
      });
      stops.push(() => emulator.close());
      emulatorUrl = `http://127.0.0.1:${emulator.port}`;
      logger.info({ url: emulator.url }, 'Stripe emulator listening (no STRIPE_SECRET_KEY set)');
    }
    const stripe = createStripeClient(config, emulatorUrl);

    // The job queue (pg-boss, same database); every service built once, on it.
    const queue = await startQueue({ config, databaseUrl: database.url, logger });
    stops.push(() => queue.stop());
    const services = createServices(config, db, { pgPool, logger, stripe, sessionSecret, stripeWebhookSecret: webhookSecret, queue });
    const { ledger } = services;
    // Email and webhook senders and the notification sweep (expiring credits, finished tasks).
    services.notifications.start();
    stops.push(() => services.notifications.stop());
    // Data exports, due erasures, retention and audit-chain sealing (issue 19).
    services.privacy.start();
    stops.push(() => services.privacy.stop());

    const sweeper = setInterval(() => {
      void (async () => {
        try {
          const holds = await ledger.expireHolds();
          const lots = await ledger.expireLots();
          const keys = await services.idempotency.purgeExpired();
          const capAlerts = await services.spend.deliverAlerts();
          // Months 2–12 of yearly subscription plans whose month has begun.
          const months = await services.subscriptions.creditDueMonths();
          if (holds + lots + keys + capAlerts + months > 0) {
            logger.info({ holds, lots, idempotencyKeys: keys, capAlerts, subscriptionMonths: months }, 'ledger sweep');
          }
        } catch (err) {
          logger.error({ err }, 'ledger sweep failed');
        }
      })();
    }, config.sweepIntervalMs);
    sweeper.unref();
    stops.push(async () => clearInterval(sweeper));

    // Unless WORKER=off, the OCR worker in this process (stopped before the queue).
    if (config.tasks.worker) {
      const worker = await createWorker(services, { queue });
      stops.push(() => worker.stop());
    }

    const app = createApp(services);

    // A slow client (a trickled upload, headers sent a byte at a time) is cut off instead of
    // holding a connection for Node's default 300 s.
    const server = http.createServer(
      {
        requestTimeout: config.http.requestTimeoutMs,
        headersTimeout: config.http.headersTimeoutMs,
        // how often Node looks for connections past those timeouts (default 30 s)
        connectionsCheckingInterval: Math.max(1000, Math.min(30_000, Math.floor(config.http.headersTimeoutMs / 4))),
      },
      app,
    );
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.port, config.host, () => resolve());
    });
    stops.push(
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // In-flight requests get a grace period, then the stragglers are cut.
          setTimeout(() => server.closeAllConnections(), 10_000).unref();
        }),
    );
    const { port } = server.address() as AddressInfo;
    const url = `http://${config.host === '0.0.0.0' ? 'localhost' : config.host}:${port}`;
    logger.info({ url, database: database.mode }, 'Tally is listening');
    return { url, port, databaseUrl: database.url, stop: stopAll };
  } catch (err) {
    await stopAll();
    throw err;
  }
}
