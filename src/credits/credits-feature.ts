import express from 'express';
import type { AppDeps, Feature } from '../app.ts';

/** Balance, history, CSV export, packages and estimates: `/api/credits/*` and /account. */
export function createCreditsFeature(_deps: AppDeps): Feature {
  const api = express.Router();
  const pages = express.Router();
  return { api, pages };
}
