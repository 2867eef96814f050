import type { Knex } from 'knex';

/**
 * Subscription plans (reference data). Credits and rollover caps in millicredits, prices in cents.
 * A yearly plan is billed once a year and still grants its credits month by month.
 * `rollover_periods`: how many credit periods rolled-over credits live (1 = until the end of the next).
 */
export const PLANS = [
  { id: 'pro', name: 'Pro', credits_millicredits: 1_000_000, interval: 'month', amount_cents: 1900, currency: 'usd', rollover_cap_millicredits: 500_000, rollover_periods: 1, sort_order: 1 },
  { id: 'pro_plus', name: 'Pro Plus', credits_millicredits: 3_000_000, interval: 'month', amount_cents: 4900, currency: 'usd', rollover_cap_millicredits: 1_500_000, rollover_periods: 1, sort_order: 2 },
  { id: 'pro_yearly', name: 'Pro yearly', credits_millicredits: 1_000_000, interval: 'year', amount_cents: 19000, currency: 'usd', rollover_cap_millicredits: 500_000, rollover_periods: 1, sort_order: 3 },
];

export async function seed(knex: Knex): Promise<void> {
  await knex('plans')
    .insert(PLANS)
    .onConflict('id')
    .merge(['name', 'credits_millicredits', 'interval', 'amount_cents', 'currency', 'rollover_cap_millicredits', 'rollover_periods', 'sort_order']);
}
