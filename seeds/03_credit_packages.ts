import type { Knex } from 'knex';

/** Credit packs sold through Stripe Checkout (reference data). Credits in millicredits, prices in cents. */
export const CREDIT_PACKAGES = [
  { id: 'starter', name: 'Starter', credits_millicredits: 100_000, bonus_millicredits: 0, amount_cents: 500, currency: 'usd', sort_order: 1 },
  { id: 'professional', name: 'Professional', credits_millicredits: 500_000, bonus_millicredits: 25_000, amount_cents: 2000, currency: 'usd', sort_order: 2 },
  { id: 'enterprise', name: 'Enterprise', credits_millicredits: 2_000_000, bonus_millicredits: 150_000, amount_cents: 6000, currency: 'usd', sort_order: 3 },
];

export async function seed(knex: Knex): Promise<void> {
  await knex('credit_packages')
    .insert(CREDIT_PACKAGES)
    .onConflict('id')
    .merge(['name', 'credits_millicredits', 'bonus_millicredits', 'amount_cents', 'currency', 'sort_order']);
}
