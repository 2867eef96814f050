import fs from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import connectPgSimple from 'connect-pg-simple';
import session from 'express-session';
import type { RequestHandler } from 'express';
import type pg from 'pg';
import type { Config } from '../config.ts';

/**
 * The session secret: `SESSION_SECRET`, or (outside production) one generated on first start and
 * kept in `<dataDir>/session-secret` so sessions survive restarts.
 */
export function resolveSessionSecret(config: Pick<Config, 'session' | 'dataDir' | 'isProduction'>): string {
  if (config.session.secret) return config.session.secret;
  if (config.isProduction) throw new Error('SESSION_SECRET is required in production');
  const file = path.join(config.dataDir, 'session-secret');
  fs.mkdirSync(config.dataDir, { recursive: true });
  if (!fs.existsSync(file)) fs.writeFileSync(file, crypto.randomBytes(48).toString('base64url'), { mode: 0o600 });
  return fs.readFileSync(file, 'utf8').trim();
}

/**
 * express-session stored in PostgreSQL (connect-pg-simple; table made by a migration). Cookie:
 * httpOnly, SameSite=Lax, Secure when APP_URL is https; idle timeout rolling (`idleMs`), and an
 * absolute lifetime (`maxAgeMs`) counted from sign-in, enforced by {@link enforceAbsoluteLifetime}.
 */
export function createSessionMiddleware(
  pool: pg.Pool,
  config: Pick<Config, 'session'>,
  secret: string,
): { middleware: RequestHandler; store: session.Store } {
  const PgStore = connectPgSimple(session);
  const store = new PgStore({ pool, tableName: 'session', createTableIfMissing: false, pruneSessionInterval: 15 * 60 });
  const middleware = session({
    name: 'tally.sid',
    secret,
    store,
    resave: false,
    saveUninitialized: false,
    rolling: true,
    unset: 'destroy',
    cookie: {
      httpOnly: true,
      sameSite: 'lax',
      secure: config.session.secureCookie,
      maxAge: config.session.idleMs,
    },
  });
  return { middleware, store };
}

/** Ends sessions older than the absolute lifetime, whatever their activity. */
export function enforceAbsoluteLifetime(maxAgeMs: number): RequestHandler {
  return (req, _res, next) => {
    const started = req.session?.authenticatedAt;
    if (started !== undefined && Date.now() - started > maxAgeMs) {
      req.session.destroy(() => next());
      return;
    }
    next();
  };
}
