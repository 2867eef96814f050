import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { createAuthPages } from './auth-pages.ts';
import { createAuthRouter } from './auth-router.ts';

/** Sign-up, login, logout, sessions: `/api/auth/*` and the /signup and /login pages. */
export function createAuthFeature(services: Services): Feature {
  const { auth, sessions, ledger, config } = services;
  return {
    api: createAuthRouter({ auth, sessions, ledger, config, growth: services.growth }),
    pages: createAuthPages({ auth, config, growth: services.growth }),
  };
}
