import express from 'express';
import type { Feature, FeatureDeps } from '../app.ts';
import { createAdminPages } from './admin-pages.ts';
import { createAdminRouter } from './admin-router.ts';
import { createAdminService } from './admin-service.ts';

/** Admin API (`/api/admin/*`) and the /admin pages. */
export function createAdminFeature(deps: FeatureDeps): Feature {
  const { audit } = deps.services;
  const admin = createAdminService({ db: deps.db, ledger: deps.ledger, audit });
  const api = express.Router();
  const pages = express.Router();
  api.use(createAdminRouter({ admin, audit, db: deps.db, config: deps.config }));
  pages.use(createAdminPages({ admin, audit }));
  return { api, pages };
}
