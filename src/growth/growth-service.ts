import type { Request, Response } from 'express';
import type pg from 'pg';
import type { RequestContext, SignupExtras } from '../auth/auth-service.ts';
import type { CurrentUser } from '../auth/auth-types.ts';
import { asProblem } from '../http/domain-problems.ts';
import type { Lot } from '../ledger/ledger-types.ts';
import { COOKIES, createGrowthCookies } from './growth-cookies.ts';
import type { AuditLog } from '../auth/audit-log.ts';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { createRedeemThrottle } from './growth-throttle.ts';
import { createPromoCodes } from './promo-codes-service.ts';

export type Growth = ReturnType<typeof createGrowth>;

/**
 * Credits that enter without a purchase (issue 17), built once by the composition root: promo
 * codes (and, as they land, referrals, visitors' trial credits and gifts). Each is a lot with its
 * own source (migrations/20261130190000_add_growth_credit_sources.ts).
 */
export function createGrowth(deps: { db: Db; ledger: Ledger; audit: AuditLog; pgPool: pg.Pool; config: Readonly<Config>; secret: string }) {
  const { db, ledger, audit, pgPool, config } = deps;
  const cookies = createGrowthCookies(deps.secret, config.session.secureCookie);
  const promoCodes = createPromoCodes({ db, ledger, audit, throttle: createRedeemThrottle(pgPool, config) });

  /** What sign-up (API and page) needs of growth: the cookies' extras and a promo code typed at sign-up. */
  const signup = {
    /** The referral, lead and browser of this request's cookies (verified signatures only). */
    extrasOf(req: Request, res: Response): SignupExtras {
      return {
        referralCode: cookies.get(req, COOKIES.referral),
        leadId: cookies.get(req, COOKIES.lead),
        browserId: cookies.browserId(req, res),
      };
    },
    /** After a successful sign-up: the cookies that were used up are cleared. */
    done(res: Response): void {
      cookies.clear(res, COOKIES.referral);
      cookies.clear(res, COOKIES.lead);
    },
    /**
     * Redeems the promo code typed at sign-up, once the account exists. The account stands either
     * way; a refusal comes back as `{redeemed: false, status, detail}` to show the user.
     */
    async redeem(user: CurrentUser, code: string, ctx: RequestContext): Promise<{ redeemed: true; lot: Lot } | { redeemed: false; status: number; detail: string }> {
      try {
        return { redeemed: true, lot: (await promoCodes.redeem(user, code, ctx)).lot };
      } catch (err) {
        const problem = asProblem(err);
        if (!problem || problem.status >= 500) throw err;
        return { redeemed: false, status: problem.status, detail: problem.status === 404 ? 'No such promo code.' : problem.detail };
      }
    },
  };

  return { promoCodes, cookies, signup };
}
