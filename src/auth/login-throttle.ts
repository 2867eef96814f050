import crypto from 'node:crypto';
import type pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config.ts';
import { TooManyRequestsError } from '../http/errors.ts';

/** The table made by migrations/20261121000420_create_login_rate_limits.ts. */
export const LOGIN_RATE_LIMIT_TABLE = 'login_rate_limits';

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;

/**
 * Login throttling per account (email) and per client IP, shared by every app process through
 * PostgreSQL (rate-limiter-flexible's RateLimiterPostgres; OWASP Authentication Cheat Sheet,
 * "Login Throttling"). Each key allows `config.login.maxFailures` failed attempts per fixed window
 * of `config.login.windowMs`.
 *
 * An attempt is counted *before* the password is checked (one atomic upsert per key), so a burst
 * of parallel guesses cannot slip past the limit; a successful login gives its attempt back.
 * Keys are SHA-256 hashes: no emails or addresses are stored in the table.
 */
export function createLoginThrottle(pool: pg.Pool, config: Pick<Config, 'login' | 'signupLimit'>) {
  const duration = Math.max(1, Math.ceil(config.login.windowMs / 1000));
  const common = {
    storeClient: pool,
    storeType: 'pool',
    tableName: LOGIN_RATE_LIMIT_TABLE,
    tableCreated: true,
    points: config.login.maxFailures,
    duration,
  };
  const byAccount = new RateLimiterPostgres({ ...common, keyPrefix: 'login_account' });
  const byIp = new RateLimiterPostgres({ ...common, keyPrefix: 'login_ip' });
  // Each sign-up grants free credits: limit them per client address so they cannot be farmed.
  const signupsByIp = new RateLimiterPostgres({
    ...common,
    keyPrefix: 'signup_ip',
    points: config.signupLimit.maxPerIp,
    duration: Math.max(1, Math.ceil(config.signupLimit.windowMs / 1000)),
  });
  const hash = (value: string) => crypto.createHash('sha256').update(value).digest('hex');

  /** Seconds until the limiter lets `res`'s key try again. */
  const retryAfter = (res: RateLimiterRes) => Math.max(1, Math.ceil(res.msBeforeNext / 1000));

  return {
    /**
     * Counts one attempt for `email` (normalized) and `ip`. Throws {@link TooManyRequestsError}
     * (429 with `Retry-After`) when either has used up its attempts in the current window; the
     * password must then not be checked at all.
     */
    async attempt(email: string, ip: string): Promise<void> {
      const results = await Promise.allSettled([byAccount.consume(hash(email)), byIp.consume(hash(ip))]);
      let wait = 0;
      for (const r of results) {
        if (r.status === 'fulfilled') continue;
        if (r.reason instanceof RateLimiterRes) wait = Math.max(wait, retryAfter(r.reason));
        else throw r.reason; // the store failed: fail closed (500), never unthrottled
      }
      if (wait > 0) throw new TooManyRequestsError(wait, 'Too many sign-in attempts. Try again later.');
    },

    /**
     * Counts one sign-up from `ip`. Throws {@link TooManyRequestsError} (429 with `Retry-After`)
     * after `SIGNUP_MAX_PER_IP` sign-ups in the window.
     */
    async signupAttempt(ip: string): Promise<void> {
      try {
        await signupsByIp.consume(hash(ip));
      } catch (err) {
        if (!(err instanceof RateLimiterRes)) throw err; // the store failed: fail closed
        throw new TooManyRequestsError(retryAfter(err), 'Too many new accounts from this network. Try again later.');
      }
    },

    /** The attempt succeeded: forget the account's failures and give the IP its attempt back. */
    async succeeded(email: string, ip: string): Promise<void> {
      await Promise.all([byAccount.delete(hash(email)), byIp.reward(hash(ip), 1)]);
    },
  };
}
