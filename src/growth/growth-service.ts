import crypto from 'node:crypto';
import type { Request, Response } from 'express';
import type pg from 'pg';
import type Stripe from 'stripe';
import type { Trx } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Payment } from '../payments/payments-store.ts';
import { formatCredits } from '../ledger/credits.ts';
import { createReferrals } from './referrals-service.ts';
import { createLeads } from './leads-service.ts';
import { createGifts } from './gifts-service.ts';
import { createGiftPacks } from './gift-packs-service.ts';
import { listPackages } from '../payments/payments-store.ts';
import type { EmailOutbox } from '../notifications/email-outbox.ts';
import type { IdempotencyKeys } from '../idempotency/idempotency-keys.ts';
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
export function createGrowth(deps: { db: Db; ledger: Ledger; audit: AuditLog; pgPool: pg.Pool; config: Readonly<Config>; secret: string; stripe: Stripe; logger: Logger; outbox: EmailOutbox; idempotency: IdempotencyKeys }) {
  const { db, ledger, audit, pgPool, config, stripe, logger } = deps;
  const cookies = createGrowthCookies(deps.secret, config.session.secureCookie);
  const giftPacks = createGiftPacks({ db, ledger, outbox: deps.outbox, config });
  const promoCodes = createPromoCodes({ db, ledger, audit, throttle: createRedeemThrottle(pgPool, config), giftCodes: giftPacks });
  const referrals = createReferrals({ db, ledger, stripe, config, logger });
  const leads = createLeads({ db, ledger, cookies, config });
  const gifts = createGifts({ db, ledger, outbox: deps.outbox, idempotency: deps.idempotency, config });

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

  /** The /account sections (views/growth/_account.ejs): the referral link and figures. */
  const account = {
    async forAccount(userId: string, req: Request, res: Response) {
      await referrals.seenIn(userId, cookies.browserId(req, res));
      const r = await referrals.summary(userId);
      const sent = await gifts.listSent(userId);
      const [bought, packs] = await Promise.all([giftPacks.listBought(userId), listPackages(db)]);
      return { giftKey: crypto.randomUUID(), sent: sent.map(gifts.giftJson), bought, packs: packs.map((p) => ({ id: p.id, name: p.name, credits: formatCredits(p.creditsMillicredits + p.bonusMillicredits) })), referral: { ...r, earned: formatCredits(r.earnedMillicredits), refereeCredits: formatCredits(config.growth.referral.refereeMillicredits), referrerCredits: formatCredits(config.growth.referral.referrerMillicredits) } };
    },
  };

  /** Called in the sign-up transaction (auth-service `onSignupExtras`). */
  async function onSignup(trx: Trx, user: CurrentUser, extras: SignupExtras): Promise<void> {
    await referrals.onSignup(trx, user, extras);
    if (extras.leadId) await leads.claim(trx, extras.leadId, user);
  }

  /** Payment hooks (payments-service `PaymentEvents`), in the payment's transaction. */
  const paymentHooks = {
    paid: (trx: Trx, payment: Payment) => referrals.paymentHooks.paid(trx, payment),
    refunded: (trx: Trx, payment: Payment, before: number, after: number, _clawedBack: number) => referrals.paymentHooks.refunded(trx, payment, before, after),
  };

  return { promoCodes, referrals, leads, gifts, giftPacks, cookies, signup, account, onSignup, paymentHooks };
}
