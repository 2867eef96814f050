import type { RequestHandler } from 'express';
import type pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import { findCurrentUser } from '../auth/users-store.ts';
import type { Db } from '../db/database.ts';
import { ForbiddenError, TooManyRequestsError, UnauthorizedError } from '../http/errors.ts';
import type { ApiKeys, ApiKeyScope, AuthenticatedKey } from './api-keys-service.ts';

declare module 'express-serve-static-core' {
  interface Request {
    /** The API key of a request sent with `Authorization: Bearer tly_live_…`. */
    apiKey?: AuthenticatedKey;
  }
}

/**
 * The JSON API routes a key may call, each with the scope it needs (paths relative to `/api`).
 * Deny by default: anything not listed — account, sessions, keys, teams, payments, admin — is 403
 * for a key, whatever its scopes.
 */
const KEY_ROUTES: Array<{ method: string; path: RegExp; scope: ApiKeyScope }> = [
  { method: 'GET', path: /^\/tasks\/?$/, scope: 'tasks:read' },
  { method: 'GET', path: /^\/tasks\/[^/]+(\/(result|download|events))?\/?$/, scope: 'tasks:read' },
  { method: 'POST', path: /^\/tasks\/?$/, scope: 'tasks:write' },
  { method: 'POST', path: /^\/tasks\/uploads\/?$/, scope: 'tasks:write' },
  { method: 'POST', path: /^\/tasks\/uploads\/[^/]+\/confirm\/?$/, scope: 'tasks:write' },
  { method: 'POST', path: /^\/tasks\/[^/]+\/retry\/?$/, scope: 'tasks:write' },
  { method: 'DELETE', path: /^\/tasks\/[^/]+\/?$/, scope: 'tasks:write' },
  { method: 'GET', path: /^\/credits\/(balance|transfers(\/[^/]+)?)\/?$/, scope: 'credits:read' },
];

/** The scope `method path` needs, or undefined when no key may call it. */
export function scopeFor(method: string, path: string): ApiKeyScope | undefined {
  const m = method === 'HEAD' ? 'GET' : method;
  return KEY_ROUTES.find((r) => r.method === m && r.path.test(path))?.scope;
}

/**
 * Bearer-key authentication for the JSON API (mounted on the `/api` router, before the Origin
 * check): with `Authorization: Bearer <key>`, the request acts as the key's owner (`req.user`,
 * `req.apiKey`) and any session cookie is ignored; there is no CSRF token for keys. Refusals are
 * problem+json: 401 for a missing, wrong or revoked key (one answer for all), 403 for a route the
 * key's scopes do not allow, 429 with `Retry-After` past the key's requests per minute (shared by
 * all app processes through PostgreSQL, rate-limiter-flexible).
 */
export function apiKeyAuth(deps: { db: Db; apiKeys: ApiKeys; pgPool: pg.Pool; defaultRatePerMinute: number }): RequestHandler {
  const limiters = new Map<number, RateLimiterPostgres>();
  const limiterFor = (points: number) => {
    let l = limiters.get(points);
    if (!l) {
      l = new RateLimiterPostgres({
        storeClient: deps.pgPool,
        storeType: 'pool',
        tableName: 'api_key_rate_limits',
        tableCreated: true,
        points,
        duration: 60,
        keyPrefix: `key${points}`,
      });
      limiters.set(points, l);
    }
    return l;
  };
  return async (req, _res, next) => {
    const header = req.get('Authorization');
    if (header === undefined) {
      delete req.apiKey;
      return next();
    }
    const m = /^Bearer\s+(\S{1,200})\s*$/i.exec(header);
    const key = m ? await deps.apiKeys.authenticate(m[1]!) : undefined;
    const user = key ? await findCurrentUser(deps.db, key.userId) : undefined;
    if (!key || !user) {
      delete req.user;
      throw new UnauthorizedError('The API key is missing, wrong or revoked.');
    }
    req.user = user;
    req.apiKey = key;
    const scope = scopeFor(req.method, req.path);
    if (!scope || !key.scopes.includes(scope)) {
      throw new ForbiddenError(scope ? `This API key lacks the ${scope} scope.` : 'API keys cannot call this route.', 'key_scope_forbidden');
    }
    try {
      await limiterFor(key.rateLimitPerMinute ?? deps.defaultRatePerMinute).consume(key.id);
    } catch (err) {
      if (err instanceof RateLimiterRes) throw new TooManyRequestsError(err.msBeforeNext / 1000, 'Too many requests with this API key.');
      throw err;
    }
    next();
  };
}
