import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { createSpendPages } from './spend-pages.ts';
import { createSpendRouter } from './spend-router.ts';
import { createAutoRechargeRouter } from '../recharge/auto-recharge-router.ts';
import express from 'express';

/**
 * Spend controls (issue 14): caps (`/api/credits/settings`, `/api/admin/users/:id/limits`) and
 * auto-recharge (`/api/credits/auto-recharge`), with the page `/account/settings/credits`.
 */
export function createSpendFeature(services: Services): Feature {
  const { spend, autoRecharge } = services;
  const api = express.Router();
  api.use(createSpendRouter({ spend }));
  api.use(createAutoRechargeRouter({ autoRecharge }));
  return { api, pages: createSpendPages({ spend, autoRecharge }) };
}
