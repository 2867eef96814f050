import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { createSpendPages } from './spend-pages.ts';
import { createSpendRouter } from './spend-router.ts';

/** Spend controls (issue 14): `/api/credits/settings`, `/api/admin/users/:id/limits`, `/account/settings/credits`. */
export function createSpendFeature(services: Services): Feature {
  const { spend } = services;
  return { api: createSpendRouter({ spend }), pages: createSpendPages({ spend }) };
}
