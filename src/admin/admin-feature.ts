import express from 'express';
import type { AppDeps, Feature } from '../app.ts';

/** Admin API (`/api/admin/*`) and the /admin pages. */
export function createAdminFeature(_deps: AppDeps): Feature {
  const api = express.Router();
  const pages = express.Router();
  return { api, pages };
}
