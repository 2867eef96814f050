import type { Knex } from 'knex';
import { up as createLegacyTables } from './20261121000300_create_stripe_emulator.ts';

/**
 * The Stripe emulator is now a workspace package (packages/stripe-emulator) with its own tables in
 * its own schema, `stripe_emulator`, migrated by the package itself in development. Its nine tables
 * leave the production schema. What they held was emulated test-mode state (no real money): a
 * development database keeps its payments and credits; only the emulator's old test objects go.
 */
const LEGACY_TABLES = [
  'stripe_emulator_idempotency_keys',
  'stripe_emulator_webhook_deliveries',
  'stripe_emulator_events',
  'stripe_emulator_refunds',
  'stripe_emulator_line_items',
  'stripe_emulator_checkout_sessions',
  'stripe_emulator_charges',
  'stripe_emulator_payment_intents',
  'stripe_emulator_customers',
] as const;

export async function up(knex: Knex): Promise<void> {
  // CASCADE: payment_intents and charges reference each other.
  await knex.raw(`DROP TABLE IF EXISTS ${LEGACY_TABLES.join(', ')} CASCADE`);
}

/** Recreates the old (empty) tables in the production schema, as 20261121000300 left them. */
export async function down(knex: Knex): Promise<void> {
  await createLegacyTables(knex);
}
