import express from 'express';
import { requestContext } from '../auth/audit-log.ts';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { balanceJson, lotJson } from '../credits/credits-json.ts';
import { validate } from '../http/validate.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { CreatePromoCodeBody, PromoCodeParams, RedeemBody } from './growth-schemas.ts';
import type { PromoCodes } from './promo-codes-service.ts';
import { promoCodeJson } from './promo-codes-json.ts';

/**
 * The growth API (issue 17): `/api/admin/promo-codes` (admins: create, list with redemption
 * counts, deactivate) and `POST /api/credits/redeem` (users).
 */
export function createGrowthRouter(deps: { promoCodes: PromoCodes; ledger: Ledger }): express.Router {
  const { promoCodes, ledger } = deps;
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

  return api;
}
