import express from 'express';
import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { createAccountPages } from './account-pages.ts';
import { createBalanceRouter } from './balance-router.ts';

/**
 * The user's own credits: balance, transfer history and CSV export (`/api/credits/balance`,
 * `/api/credits/transfers…`) and the /account page (with purchases from the payments service and
 * sessions from the sessions service). Pricing and estimates live in pricing-feature.ts.
 */
export function createCreditsFeature(services: Services): Feature {
  const { db, ledger, sessions, payments, notifications } = services;
  const api = express.Router();
  const pages = express.Router();
  api.use(createBalanceRouter({ db, ledger, keysOfHolds: services.apiKeys.keysOfHolds }));
  pages.use(createAccountPages({ ledger, sessions, payments, notices: notifications.notifications, subscriptions: services.subscriptions }));
  return { api, pages };
}
