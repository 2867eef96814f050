/**
 * `npm run stripe:emulator`: runs the Stripe emulator (packages/stripe-emulator) alone, on STRIPE_EMULATOR_PORT
 * (default 12111), against Tally's database (DATABASE_URL, or the embedded server: attached when
 * the app already runs it, started otherwise). Webhooks go to `${APP_URL}/api/payments/webhook`,
 * signed with STRIPE_WEBHOOK_SECRET or the secret generated in the data dir (the same one the
 * app reads through `resolveEmulatorWebhookSecret`).
 */
import { loadConfig } from '../config.ts';
import { openDatabase } from '../db/database.ts';
import { createLogger } from '../logger.ts';
import {
  emulatorPublicUrl,
  emulatorWebhookUrl,
  migrateStripeEmulator,
  resolveEmulatorWebhookSecret,
  startStripeEmulatorServer,
} from '@tally/stripe-emulator';

async function main(): Promise<void> {
  const config = loadConfig();
  const logger = createLogger(config.logLevel);
  const database = await openDatabase(config, logger, { attach: true });
  await migrateStripeEmulator(database.db);
  const webhook = { url: emulatorWebhookUrl(config), secret: resolveEmulatorWebhookSecret(config) };
  const server = await startStripeEmulatorServer({
    db: database.db,
    logger,
    port: config.stripe.emulatorPort,
    host: config.host,
    publicUrl: emulatorPublicUrl(config),
    webhook,
  });
  logger.info(
    { url: server.url, publicUrl: emulatorPublicUrl(config, server.port), webhookUrl: webhook.url },
    `Stripe emulator listening; use new Stripe('sk_test_…', {host: '127.0.0.1', port: ${server.port}, protocol: 'http'})`,
  );

  let closing = false;
  const shutdown = async (signal: string) => {
    if (closing) return;
    closing = true;
    logger.info({ signal }, 'Stripe emulator shutting down');
    try {
      await server.close();
      await database.close();
      process.exit(0);
    } catch (err) {
      logger.error({ err }, 'Stripe emulator shutdown failed');
      process.exit(1);
    }
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
