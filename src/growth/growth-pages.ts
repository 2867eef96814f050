import express, { type Request, type Response } from 'express';
import { requestContext } from '../auth/audit-log.ts';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { fieldErrorsOf, formBody } from '../auth/page-forms.ts';
import { setFlash, takeFlash } from '../auth/session.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { asProblem } from '../http/domain-problems.ts';
import { parseOrThrow } from '../http/validate.ts';
import { formatCredits } from '../ledger/credits.ts';
import { CreatePromoCodeBody, GiftBody, GiftPackBody, PromoCodeParams, RedeemBody } from './growth-schemas.ts';
import type { PromoCodes } from './promo-codes-service.ts';
import type { Referrals } from './referrals-service.ts';
import type { Leads } from './leads-service.ts';
import type { Gifts } from './gifts-service.ts';
import type { GiftPacks } from './gift-packs-service.ts';
import type { Payments } from '../payments/payments-service.ts';
import type { Config } from '../config.ts';
import { AppError } from '../http/errors.ts';
import { COOKIES, type GrowthCookies } from './growth-cookies.ts';
import { NotFoundError } from '../http/errors.ts';

/**
 * The growth pages: /admin/promo-codes (list, create, deactivate) and the redeem form of /account
 * (views/growth/_account.ejs posts to POST /account/redeem), and referral links `/r/<code>`. Forms post back with a CSRF token and
 * redirect (303) with a message, or re-render with inline errors.
 */
export function createGrowthPages(deps: {
  promoCodes: PromoCodes;
  referrals: Referrals;
  cookies: GrowthCookies;
  leads: Leads;
  gifts: Gifts;
  giftPacks: GiftPacks;
  payments: Pick<Payments, 'createCheckout'>;
  config: Pick<Config, 'growth'>;
}): express.Router {
  const { promoCodes, referrals, cookies, leads, gifts, giftPacks, payments, config } = deps;
  const pages = express.Router();

  async function renderAdmin(req: Request, res: Response, status: number, form: { values: Record<string, unknown>; errors: Record<string, string> }) {
    res.status(status).render('growth/admin-promo-codes', {
      title: 'Promo codes',
      flash: takeFlash(req),
      codes: await promoCodes.list(),
      form,
      fmt: { ...viewHelpers, credits: formatCredits },
    });
  }

  pages.get('/admin/promo-codes', requireAdmin, async (req, res) => {
    await renderAdmin(req, res, 200, { values: { perUserLimit: '1' }, errors: {} });
  });

  pages.post('/admin/promo-codes', requireAdmin, async (req, res) => {
    const fields = formBody(req);
    try {
      const { credits, ...rest } = parseOrThrow(CreatePromoCodeBody, fields, 'body');
      const code = await promoCodes.create(req.user!, { ...rest, millicredits: credits }, requestContext(req));
      setFlash(req, { type: 'success', message: `Created the code ${code.code} worth ${formatCredits(code.millicredits)} credits.` });
      res.redirect(303, '/admin/promo-codes');
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (errors) return renderAdmin(req, res, 400, { values: fields, errors });
      const problem = asProblem(err);
      if (problem && problem.status === 409) return renderAdmin(req, res, 409, { values: fields, errors: { code: problem.detail } });
      throw err;
    }
  });

  pages.post('/admin/promo-codes/:id/deactivate', requireAdmin, async (req, res) => {
    const { id } = parseOrThrow(PromoCodeParams, req.params, 'params');
    const code = await promoCodes.deactivate(req.user!, id, requestContext(req));
    setFlash(req, { type: 'success', message: `Deactivated the code ${code.code}.` });
    res.redirect(303, '/admin/promo-codes');
  });

  pages.post('/account/redeem', requireAuth, async (req, res) => {
    try {
      const { code } = parseOrThrow(RedeemBody, formBody(req), 'body');
      const { lot } = await promoCodes.redeem(req.user!, code, requestContext(req));
      const until = lot.expiresAt ? ` They expire on ${viewHelpers.date(lot.expiresAt)}.` : '';
      setFlash(req, { type: 'success', message: `Code redeemed: ${formatCredits(lot.amount)} credits added.${until}` });
    } catch (err) {
      const errors = fieldErrorsOf(err);
      const problem = asProblem(err);
      if (errors) setFlash(req, { type: 'error', message: `Promo code ${errors.code ?? errors.form ?? 'is invalid'}.` });
      else if (problem && problem.status < 500) setFlash(req, { type: 'error', message: problem.status === 404 ? 'No such promo code. Check the spelling.' : problem.detail });
      else throw err;
    }
    res.redirect(303, '/account#redeem');
  });

  pages.post('/account/gifts', requireAuth, async (req, res) => {
    const fields = formBody(req);
    const { idempotencyKey, ...rest } = fields;
    try {
      const { toEmail, credits, message } = parseOrThrow(GiftBody, rest, 'body');
      const key = typeof idempotencyKey === 'string' && /^[\w-]{1,100}$/.test(idempotencyKey) ? idempotencyKey : undefined;
      const r = await gifts.send(req.user!, { toEmail, millicredits: credits, message }, key);
      const gift = r.body.gift as { status: string };
      setFlash(req, {
        type: 'success',
        message: gift.status === 'delivered' ? `Sent ${formatCredits(credits)} credits to ${toEmail}.` : `Sent ${formatCredits(credits)} credits to ${toEmail}. They have no account yet: we emailed them a link to claim the credits within ${config.growth.giftClaimDays} days.`,
      });
    } catch (err) {
      const errors = fieldErrorsOf(err);
      const problem = asProblem(err);
      if (errors) {
        const names: Record<string, string> = { toEmail: 'Email', credits: 'Credits', message: 'Message' };
        setFlash(req, { type: 'error', message: Object.entries(errors).map(([k, v]) => `${names[k] ?? 'The form'} ${v}.`).join(' ') });
      } else if (problem && problem.status === 402) {
        setFlash(req, { type: 'error', message: `Only purchased credits can be given, and you do not have enough of them free: ${problem.detail}`, topUp: true });
      } else if (problem && problem.status < 500) setFlash(req, { type: 'error', message: problem.detail });
      else throw err;
    }
    res.redirect(303, '/account#gift');
  });

  pages.post('/account/gift-packs', requireAuth, async (req, res) => {
    const { packageId } = parseOrThrow(GiftPackBody, formBody(req), 'body');
    const r = await payments.createCheckout(req.user!, packageId);
    await giftPacks.mark(r.payment.id, req.user!.id);
    res.redirect(303, r.checkoutUrl);
  });

  /** A claim link: who sent what; sign up or log in, then claim (once). */
  pages.get('/gifts/claim/:token', async (req, res) => {
    const gift = await gifts.findByToken(String(req.params.token));
    if (!gift) throw new NotFoundError('gift');
    res.render('growth/claim', {
      title: 'Claim your gift',
      flash: takeFlash(req),
      gift: { ...gift, credits: formatCredits(gift.millicredits), expired: gift.status === 'returned' || (gift.claimExpiresAt !== null && gift.claimExpiresAt <= new Date()) },
      here: req.originalUrl,
      fmt: viewHelpers,
    });
  });

  pages.post('/gifts/claim/:token', requireAuth, async (req, res) => {
    const token = String(req.params.token);
    try {
      const { lot } = await gifts.claim(req.user!, token);
      setFlash(req, { type: 'success', message: `Gift claimed: ${formatCredits(lot.amount)} credits added to your account.` });
      res.redirect(303, '/account#lots');
    } catch (err) {
      const problem = asProblem(err);
      if (!problem || problem.status >= 500 || problem.status === 404) throw err;
      setFlash(req, { type: 'error', message: problem.detail });
      res.redirect(303, `/gifts/claim/${encodeURIComponent(token)}`);
    }
  });

  /** The visitor trial: what it is, and a button that opens a lead (signed-in users go to /tasks). */
  pages.get('/try', async (req, res) => {
    if (req.user) return res.redirect(303, '/tasks');
    res.render('growth/try', {
      title: 'Try Tally',
      flash: takeFlash(req),
      trial: { credits: formatCredits(config.growth.lead.trialMillicredits), days: config.growth.lead.trialDays },
    });
  });

  pages.post('/try', async (req, res) => {
    if (req.user) return res.redirect(303, '/tasks');
    const known = cookies.get(req, COOKIES.lead);
    if (known && (await leads.find(known))) return res.redirect(303, '/tasks');
    try {
      const lead = await leads.open(req.ip ?? 'unknown');
      leads.remember(res, lead.id);
      setFlash(req, {
        type: 'success',
        message: `You have ${formatCredits(lead.millicredits)} trial credits until ${viewHelpers.date(lead.expiresAt)}. Upload a scan or a PDF to try Tally; sign up to keep your results and the credits left.`,
      });
      res.redirect(303, '/tasks');
    } catch (err) {
      if (!(err instanceof AppError) || err.status !== 429) throw err;
      for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
      setFlash(req, { type: 'error', message: err.detail });
      res.redirect(303, '/signup');
    }
  });

  /**
   * A referral link: remembers the code in a signed cookie for 30 days and sends the visitor to
   * sign up. A signed-in user following a link is not referred (their browser is remembered, so
   * their own link never rewards them from it). Unknown codes → 404.
   */
  pages.get('/r/:code', async (req, res) => {
    const code = String(req.params.code).toLowerCase();
    if (!(await referrals.knownCode(code))) throw new NotFoundError('referral link');
    const browser = cookies.browserId(req, res);
    if (req.user) {
      await referrals.seenIn(req.user.id, browser);
      return res.redirect(303, '/account#referrals');
    }
    cookies.set(res, COOKIES.referral, code, 30 * 86_400_000);
    res.redirect(303, '/signup');
  });

  return pages;
}
