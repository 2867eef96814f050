import type { Knex } from 'knex';

/** Reference data only (credit packs, prices): idempotent upserts, never user data. */
export async function seed(_knex: Knex): Promise<void> {
  // Filled by the payments (credit packs) and tasks (operation prices) features.
}
