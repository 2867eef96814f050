import express from 'express';
import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { createAdminPages } from './admin-pages.ts';
import { createAdminRouter } from './admin-router.ts';

/** Admin API (`/api/admin/*`) and the /admin pages. */
export function createAdminFeature(services: Services): Feature {
  const { admin, audit, db, config, payments } = services;
  const api = express.Router();
  const pages = express.Router();
  api.use(createAdminRouter({ admin, audit, db, config, payments }));
  pages.use(createAdminPages({ admin, audit, payments, subscriptions: services.subscriptions, spend: services.spend }));
  return { api, pages };
}
