import crypto from 'node:crypto';
import type pg from 'pg';
import { RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config.ts';
import { TooManyRequestsError } from '../http/errors.ts';
import { LOGIN_RATE_LIMIT_TABLE } from '../auth/login-throttle.ts';

export type RedeemThrottle = ReturnType<typeof createRedeemThrottle>;

/**
 * Throttles promo-code redemptions per user and per client IP (guessing codes is brute force;
 * OWASP Authentication Cheat Sheet, "Login Throttling", applied to codes). Shared by every app
 * process through PostgreSQL (rate-limiter-flexible's RateLimiterPostgres, the login limiter's
 * table, own key prefixes). An attempt is counted BEFORE the code is looked up, so parallel guesses
 * cannot slip past the limit; an attempt that found a real code (granted, or refused as already
 * redeemed / used up / expired) is given back, so only guesses use up the allowance of
 * `PROMO_REDEEM_MAX_FAILURES` per `PROMO_REDEEM_WINDOW_MINUTES`. Keys are SHA-256 hashes.
 */
export function createRedeemThrottle(pool: pg.Pool, config: Pick<Config, 'growth'>) {
  const { maxFailures, windowMs } = config.growth.promoRedeem;
  const common = {
    storeClient: pool,
    storeType: 'pool',
    tableName: LOGIN_RATE_LIMIT_TABLE,
    tableCreated: true,
    points: maxFailures,
    duration: Math.max(1, Math.ceil(windowMs / 1000)),
  };
  const byUser = new RateLimiterPostgres({ ...common, keyPrefix: 'promo_user' });
  const byIp = new RateLimiterPostgres({ ...common, keyPrefix: 'promo_ip' });
  const hash = (value: string) => crypto.createHash('sha256').update(value).digest('hex');

  return {
    /** Counts one attempt; throws {@link TooManyRequestsError} (429, `Retry-After`) when either key is used up. */
    async attempt(userId: string, ip: string): Promise<void> {
      const results = await Promise.allSettled([byUser.consume(hash(userId)), byIp.consume(hash(ip))]);
      let wait = 0;
      for (const r of results) {
        if (r.status === 'fulfilled') continue;
        if (r.reason instanceof RateLimiterRes) wait = Math.max(wait, Math.ceil(r.reason.msBeforeNext / 1000));
        else throw r.reason; // the store failed: fail closed
      }
      if (wait > 0) throw new TooManyRequestsError(wait, 'Too many promo code attempts. Try again later.');
    },

    /** The attempt named a real code: give it back to both keys. */
    async forgive(userId: string, ip: string): Promise<void> {
      await Promise.all([byUser.reward(hash(userId), 1), byIp.reward(hash(ip), 1)]);
    },
  };
}
