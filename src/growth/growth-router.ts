import express from 'express';
import { requestContext } from '../auth/audit-log.ts';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { balanceJson, lotJson } from '../credits/credits-json.ts';
import { apiRoute } from '../http/api-routes.ts';
import { idempotencyKeyOf, validate } from '../http/validate.ts';
import { CheckoutResponse } from '../payments/payments-responses.ts';
import * as R from './growth-responses.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { ClaimBody, CreatePromoCodeBody, GiftBody, GiftPackBody, PromoCodeParams, RedeemBody } from './growth-schemas.ts';
import type { PromoCodes } from './promo-codes-service.ts';
import type { Referrals } from './referrals-service.ts';
import type { Gifts } from './gifts-service.ts';
import type { GiftPacks } from './gift-packs-service.ts';
import type { Payments } from '../payments/payments-service.ts';
import type { GrowthCookies } from './growth-cookies.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { promoCodeJson } from './promo-codes-json.ts';

/**
 * The growth API (issue 17): `/api/admin/promo-codes` (admins: create, list with redemption
 * counts, deactivate), `POST /api/credits/redeem` and `GET /api/referrals` (users).
 */
export function createGrowthRouter(deps: {
  promoCodes: PromoCodes;
  ledger: Ledger;
  referrals: Referrals;
  cookies: GrowthCookies;
  gifts: Gifts;
  giftPacks: GiftPacks;
  payments: Pick<Payments, 'createCheckout'>;
}): express.Router {
  const { promoCodes, ledger, referrals, cookies, gifts, giftPacks, payments } = deps;
  const api = express.Router();

  apiRoute(api, { method: 'post', path: '/admin/promo-codes', summary: 'Create a promo code (credits, validity window, redemption limits)', tags: ['admin'], auth: 'admin', request: { body: CreatePromoCodeBody }, responses: { 201: R.PromoCodeResponse } }, requireAdmin, async (req, res) => {
    const body = validate(CreatePromoCodeBody, req);
    const { credits, ...rest } = body;
    const code = await promoCodes.create(req.user!, { ...rest, millicredits: credits }, requestContext(req));
    res.status(201).json({ promoCode: promoCodeJson(code) });
  });

  apiRoute(api, { method: 'get', path: '/admin/promo-codes', summary: 'Every promo code, with how often it was redeemed', tags: ['admin'], auth: 'admin', responses: { 200: R.PromoCodesResponse } }, requireAdmin, async (_req, res) => {
    res.json({ promoCodes: (await promoCodes.list()).map(promoCodeJson) });
  });

  apiRoute(api, { method: 'post', path: '/admin/promo-codes/:id/deactivate', summary: 'Deactivate a promo code (no further redemptions)', tags: ['admin'], auth: 'admin', request: { params: PromoCodeParams }, responses: { 200: R.PromoCodeResponse } }, requireAdmin, async (req, res) => {
    const { id } = validate(PromoCodeParams, req, 'params');
    res.json({ promoCode: promoCodeJson(await promoCodes.deactivate(req.user!, id, requestContext(req))) });
  });

  apiRoute(api, { method: 'post', path: '/credits/redeem', summary: 'Redeem a promo or gift code (any letter case): the lot it granted and your balance', tags: ['credits'], auth: 'user', request: { body: RedeemBody }, responses: { 201: R.RedeemResponse } }, requireAuth, async (req, res) => {
    const { code } = validate(RedeemBody, req);
    const { lot } = await promoCodes.redeem(req.user!, code, requestContext(req));
    res.status(201).json({ lot: lotJson(lot), balance: balanceJson(await ledger.getBalance(req.user!.id)) });
  });

  apiRoute(api, { method: 'post', path: '/credits/gifts', summary: 'Give purchased credits to someone by email (claim link by email if they have no account)', tags: ['credits'], auth: 'user', request: { body: GiftBody, idempotencyKey: true }, responses: { 201: R.GiftSentResponse } }, requireAuth, async (req, res) => {
    const key = idempotencyKeyOf(req);
    const { toEmail, credits, message } = validate(GiftBody, req);
    const r = await gifts.send(req.user!, { toEmail, millicredits: credits, message }, key);
    if (r.replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(r.statusCode).json(r.body);
  });

  // A pack bought as a gift: Checkout as for any pack; once paid, a gift code instead of credits.
  apiRoute(api, { method: 'post', path: '/credits/gift-packs', summary: 'Buy a credit pack as a gift: Stripe Checkout, then a gift code instead of credits', tags: ['credits'], auth: 'user', request: { body: GiftPackBody, idempotencyKey: true }, responses: { 201: CheckoutResponse } }, requireAuth, async (req, res) => {
    const { packageId } = validate(GiftPackBody, req);
    const key = idempotencyKeyOf(req);
    const r = await payments.createCheckout(req.user!, packageId, key ? `gift-pack:${key}` : undefined);
    await giftPacks.mark(r.payment.id, req.user!.id);
    res.status(201).json({ paymentId: r.payment.id, sessionId: r.sessionId, checkoutUrl: r.checkoutUrl });
  });

  apiRoute(api, { method: 'get', path: '/credits/gift-packs', summary: 'The gift codes you bought, newest first', tags: ['credits'], auth: 'user', responses: { 200: R.GiftCodesResponse } }, requireAuth, async (req, res) => {
    res.json({ giftCodes: await giftPacks.listBought(req.user!.id) });
  });

  apiRoute(api, { method: 'get', path: '/credits/gifts', summary: 'The gifts you sent, newest first, with their status', tags: ['credits'], auth: 'user', responses: { 200: R.GiftsResponse } }, requireAuth, async (req, res) => {
    res.json({ gifts: (await gifts.listSent(req.user!.id)).map(gifts.giftJson) });
  });

  apiRoute(api, { method: 'post', path: '/gifts/claim', summary: 'Claim a gift (the token of its claim link): the lot it granted and your balance', tags: ['gifts'], auth: 'user', request: { body: ClaimBody }, responses: { 201: R.GiftClaimedResponse } }, requireAuth, async (req, res) => {
    const { token } = validate(ClaimBody, req);
    const { gift, lot } = await gifts.claim(req.user!, token);
    res.status(201).json({ gift: gifts.giftJson(gift), lot: lotJson(lot), balance: balanceJson(await ledger.getBalance(req.user!.id)) });
  });

  apiRoute(api, { method: 'get', path: '/referrals', summary: 'Your referral code and link, how many signed up through it, were rewarded, and the credits you earned', tags: ['referrals'], auth: 'user', responses: { 200: R.ReferralsResponse } }, requireAuth, async (req, res) => {
    const user = req.user!;
    await referrals.seenIn(user.id, cookies.browserId(req, res));
    const s = await referrals.summary(user.id);
    res.json({ code: s.code, link: s.link, referred: s.referred, rewarded: s.rewarded, creditsEarned: millicreditsToCredits(s.earnedMillicredits) });
  });

  return api;
}
