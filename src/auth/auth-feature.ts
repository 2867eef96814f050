import type { Feature, FeatureDeps } from '../app.ts';
import { createAuthPages } from './auth-pages.ts';
import { createAuthRouter } from './auth-router.ts';
import { createAuthService } from './auth-service.ts';
import { createLoginThrottle } from './login-throttle.ts';
import { createSessionsService } from './sessions-service.ts';

/** Sign-up, login, logout, sessions: `/api/auth/*` and the /signup and /login pages. */
export function createAuthFeature(deps: FeatureDeps): Feature {
  const { audit } = deps.services;
  const auth = createAuthService({
    db: deps.db,
    ledger: deps.ledger,
    config: deps.config,
    audit,
    throttle: createLoginThrottle(deps.pgPool, deps.config),
    onSignup: (trx, user) => deps.notifications.recovery.sendVerification(trx, user),
  });
  const sessions = createSessionsService({ db: deps.db, audit });
  return {
    api: createAuthRouter({ auth, sessions, ledger: deps.ledger, config: deps.config }),
    pages: createAuthPages({ auth, config: deps.config }),
  };
}
