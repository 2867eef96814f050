/**
 * @tally/stripe-emulator: the subset of Stripe's API Tally uses, for development and tests.
 * Point the official SDK at a running server with `new Stripe('sk_test_…', {host, port, protocol: 'http'})`.
 * Migrate its schema first with {@link migrateStripeEmulator}.
 */
export {
  createStripeEmulator,
  startStripeEmulatorServer,
  emulatorPublicUrl,
  emulatorWebhookUrl,
  resolveEmulatorWebhookSecret,
  EMULATOR_API_VERSION,
  type StripeEmulator,
  type StripeEmulatorDeps,
  type StripeEmulatorServer,
  type StripeEmulatorServerOptions,
  type RetryOptions,
  type WebhookEndpoint,
} from './stripe-emulator.ts';
export { migrateStripeEmulator, rollbackStripeEmulator, SCHEMA as STRIPE_EMULATOR_SCHEMA } from './db.ts';
