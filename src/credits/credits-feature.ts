import express from 'express';
import type { Feature, FeatureDeps } from '../app.ts';
import { createSessionsService } from '../auth/sessions-service.ts';
import { createAccountPages } from './account-pages.ts';
import { createBalanceRouter } from './balance-router.ts';

/**
 * The user's own credits: balance, transfer history and CSV export (`/api/credits/balance`,
 * `/api/credits/transfers…`) and the /account page. Pricing and estimates live in pricing-feature.ts.
 */
export function createCreditsFeature(deps: FeatureDeps): Feature {
  const api = express.Router();
  const pages = express.Router();
  api.use(createBalanceRouter({ db: deps.db, ledger: deps.ledger }));
  const sessions = createSessionsService({ db: deps.db, audit: deps.services.audit });
  pages.use(createAccountPages({ ledger: deps.ledger, sessions }));
  return { api, pages };
}
