import Stripe from 'stripe';
import { afterAll, beforeAll } from 'vitest';
import { pino } from 'pino';
import { startStripeEmulatorServer, type StripeEmulatorServer } from '../src/stripe-emulator.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db.ts';

/** A fresh test database, the emulator on a free port (no webhook, no background delivery), and a Stripe SDK client for it. */
export interface EmulatorServerTestEnv {
  t: TestDatabase;
  server: StripeEmulatorServer;
  stripe: Stripe;
}

/**
 * Registers the file's hooks: before all tests, starts an {@link EmulatorServerTestEnv} whose SDK
 * client uses the secret key `apiKey`, and hands it to `take`; after all, closes the emulator and
 * drops the database.
 */
export function useEmulatorServer(apiKey: string, take: (env: EmulatorServerTestEnv) => void): void {
  let env: EmulatorServerTestEnv | undefined;
  beforeAll(async () => {
    const t = await createTestDatabase();
    const server = await startStripeEmulatorServer({ db: t.db, logger: pino({ level: 'silent' }), webhook: undefined, port: 0, deliver: false });
    const stripe = new Stripe(apiKey, { host: '127.0.0.1', port: server.port, protocol: 'http' });
    env = { t, server, stripe };
    take(env);
  });
  afterAll(async () => {
    await env?.server.close();
    await env?.t.drop();
  });
}
