import express from 'express';
import { requestContext } from '../auth/audit-log.ts';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { balanceJson, lotJson } from '../credits/credits-json.ts';
import { validate } from '../http/validate.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { CreatePromoCodeBody, PromoCodeParams, RedeemBody } from './growth-schemas.ts';
import type { PromoCodes } from './promo-codes-service.ts';
import type { Referrals } from './referrals-service.ts';
import type { GrowthCookies } from './growth-cookies.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { promoCodeJson } from './promo-codes-json.ts';

/**
 * The growth API (issue 17): `/api/admin/promo-codes` (admins: create, list with redemption
 * counts, deactivate), `POST /api/credits/redeem` and `GET /api/referrals` (users).
 */
export function createGrowthRouter(deps: { promoCodes: PromoCodes; ledger: Ledger; referrals: Referrals; cookies: GrowthCookies }): express.Router {
  const { promoCodes, ledger, referrals, cookies } = deps;
  const api = express.Router();

  api.post('/admin/promo-codes', requireAdmin, async (req, res) => {
    const body = validate(CreatePromoCodeBody, req);
    const { credits, ...rest } = body;
    const code = await promoCodes.create(req.user!, { ...rest, millicredits: credits }, requestContext(req));
    res.status(201).json({ promoCode: promoCodeJson(code) });
  });

  api.get('/admin/promo-codes', requireAdmin, async (_req, res) => {
    res.json({ promoCodes: (await promoCodes.list()).map(promoCodeJson) });
  });

  api.post('/admin/promo-codes/:id/deactivate', requireAdmin, async (req, res) => {
    const { id } = validate(PromoCodeParams, req, 'params');
    res.json({ promoCode: promoCodeJson(await promoCodes.deactivate(req.user!, id, requestContext(req))) });
  });

  api.post('/credits/redeem', requireAuth, async (req, res) => {
    const { code } = validate(RedeemBody, req);
    const { lot } = await promoCodes.redeem(req.user!, code, requestContext(req));
    res.status(201).json({ lot: lotJson(lot), balance: balanceJson(await ledger.getBalance(req.user!.id)) });
  });

  api.get('/referrals', requireAuth, async (req, res) => {
    const user = req.user!;
    await referrals.seenIn(user.id, cookies.browserId(req, res));
    const s = await referrals.summary(user.id);
    res.json({ code: s.code, link: s.link, referred: s.referred, rewarded: s.rewarded, creditsEarned: millicreditsToCredits(s.earnedMillicredits) });
  });

  return api;
}
