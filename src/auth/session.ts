import fs from 'node:fs';
import crypto from 'node:crypto';
import path from 'node:path';
import session from 'express-session';
import type { Request, RequestHandler, Response } from 'express';
import type pg from 'pg';
import type { Config } from '../config.ts';
import type { CurrentUser, Flash } from './auth-types.ts';
import { createSessionStore } from './session-store.ts';

/** The session cookie's name. */
export const SESSION_COOKIE = 'tally.sid';

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
 * express-session stored in PostgreSQL ({@link createSessionStore}: a destroyed session stays
 * destroyed; expiry written at most once a minute). Table made by a migration. Cookie:
 * httpOnly, SameSite=Lax, Secure when APP_URL is https; idle timeout rolling (`idleMs`), and an
 * absolute lifetime (`maxAgeMs`) counted from sign-in, enforced by {@link enforceAbsoluteLifetime}.
 */
export function createSessionMiddleware(
  pool: pg.Pool,
  config: Pick<Config, 'session'>,
  secret: string,
): { middleware: RequestHandler; store: session.Store } {
  const store = createSessionStore(pool);
  const middleware = session({
    name: SESSION_COOKIE,
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

/**
 * Ends sessions older than the absolute lifetime, whatever their activity: the stored session is
 * destroyed and the request goes on with a fresh, empty one (so pages can still get a CSRF token).
 */
export function enforceAbsoluteLifetime(maxAgeMs: number): RequestHandler {
  return (req, _res, next) => {
    const started = req.session?.authenticatedAt;
    if (started !== undefined && Date.now() - started > maxAgeMs) {
      req.session.regenerate((err) => next(err));
      return;
    }
    next();
  };
}

/**
 * Signs `user` in on this request: a new session id (the old session is destroyed, so a fixated
 * id is worthless), then `userId`, `authenticatedAt`, user agent and IP stored, and saved before
 * the response. Call on login, signup and any privilege change.
 */
export function establishSession(req: Request, user: CurrentUser): Promise<void> {
  return new Promise((resolve, reject) => {
    req.session.regenerate((err) => {
      if (err) return reject(err);
      req.session.userId = user.id;
      req.session.authenticatedAt = Date.now();
      req.session.userAgent = req.get('user-agent')?.slice(0, 200);
      req.session.ip = req.ip;
      req.user = user;
      req.session.save((saveErr) => (saveErr ? reject(saveErr) : resolve()));
    });
  });
}

/** Signs out: destroys the stored session and clears the cookie. Safe without a session. */
export function endSession(req: Request, res: Response, config: Pick<Config, 'session'>): Promise<void> {
  return new Promise((resolve, reject) => {
    res.clearCookie(SESSION_COOKIE, { path: '/', httpOnly: true, sameSite: 'lax', secure: config.session.secureCookie });
    delete req.user;
    if (!req.session) return resolve();
    req.session.destroy((err) => (err ? reject(err) : resolve()));
  });
}

/**
 * Makes `res.redirect` wait until a session holding a one-time message is stored. express-session
 * sends a response's headers before its store write finishes, so a browser could follow the 303
 * and load the next page from the old session: the message ("Welcome to Tally!", "2 documents are
 * queued") would be lost. Mount right after the session middleware.
 */
export function saveSessionBeforeRedirect(): RequestHandler {
  return (req, res, next) => {
    const redirect = res.redirect.bind(res) as (...args: unknown[]) => void;
    res.redirect = ((...args: unknown[]) => {
      if (!req.session?.flash) return redirect(...args);
      req.session.save((err) => (err ? next(err) : redirect(...args)));
    }) as typeof res.redirect;
    next();
  };
}

/** Stores a one-time message for the next page (see {@link takeFlash}). */
export function setFlash(req: Request, flash: Flash): void {
  if (req.session) req.session.flash = flash;
}

/** Returns and forgets the pending one-time message, if any. */
export function takeFlash(req: Request): Flash | undefined {
  const flash = req.session?.flash;
  if (flash) delete req.session.flash;
  return flash;
}
