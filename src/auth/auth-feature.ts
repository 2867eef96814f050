import express from 'express';
import type { AppDeps, Feature } from '../app.ts';

/** Sign-up, login, logout, sessions: `/api/auth/*` and the /signup and /login pages. */
export function createAuthFeature(_deps: AppDeps): Feature {
  const api = express.Router();
  const pages = express.Router();
  return { api, pages };
}
