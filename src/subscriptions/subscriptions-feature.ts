import express, { type Request } from 'express';
import { z } from 'zod';
import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { requestContext } from '../auth/audit-log.ts';
import { setFlash } from '../auth/session.ts';
import { AppError } from '../http/errors.ts';
import { validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import * as R from './subscriptions-responses.ts';
import { NotFoundError } from '../http/errors.ts';
import { invoiceJson, planJson, subscriptionJson } from './subscriptions-json.ts';

const PlanBody = z.object({ planId: z.string().min(1).max(64) }).strict();
const PlanForm = z.object({ planId: z.string().min(1).max(64), _csrf: z.string().optional() }).strict();
const EmptyBody = z.object({}).strict();
const EmptyForm = z.object({ _csrf: z.string().optional() }).strict();
const GrantBody = z.object({ reason: z.string().trim().min(3).max(500) }).strict();
const GrantForm = z.object({ reason: z.string().trim().min(3).max(500), _csrf: z.string().optional() }).strict();
const UserParams = z.object({ id: z.uuid() }).strict();
const SuccessQuery = z.object({ session_id: z.string().min(1).max(255) }).strict();

/**
 * Subscriptions: plans, checkout, the current subscription (cancel, resume, change plan), the
 * customer portal, the admin's manual grant; and the pages' form posts for the same actions.
 */
export function createSubscriptionsFeature(services: Services): Feature {
  const { subscriptions, audit } = services;

  async function current(userId: string) {
    const s = await subscriptions.summary(userId);
    if (!s) throw new NotFoundError('subscription');
    return s;
  }

  async function adminGrant(req: Request, userId: string, reason: string) {
    const admin = req.user!;
    const r = await subscriptions.grantCurrentPeriod(userId, `admin:${admin.id}`, reason);
    if (r.granted) {
      await audit.record({
        actor: `admin:${admin.id}`,
        actorUserId: admin.id,
        action: 'admin.subscription_credits_granted',
        target: { type: 'user', id: userId },
        details: { reason, periodStart: r.periodStart.toISOString(), periodEnd: r.periodEnd.toISOString() },
        ...requestContext(req),
      });
    }
    return r;
  }

  const api = express.Router();
  apiRoute(api, { method: 'get', path: '/subscriptions/plans', summary: 'Subscription plans', auth: 'none', responses: { 200: R.PlansResponse } }, async (_req, res) => {
    res.json({ plans: (await subscriptions.listPlans()).map(planJson) });
  });
  apiRoute(api, { method: 'post', path: '/subscriptions/checkout', summary: 'Subscribe: a Stripe Checkout Session in subscription mode (409 `already_subscribed` when you have one)', auth: 'user', request: { body: PlanBody }, responses: { 201: R.SubscriptionCheckoutResponse } }, requireAuth, async (req, res) => {
    const body = validate(PlanBody, req);
    res.status(201).json(await subscriptions.createCheckout(req.user!, body.planId));
  });
  apiRoute(api, { method: 'get', path: '/subscriptions/current', summary: 'Your subscription (404 if you never subscribed)', auth: 'user', responses: { 200: R.SubscriptionResponse } }, requireAuth, async (req, res) => {
    res.json({ subscription: subscriptionJson(await current(req.user!.id)) });
  });
  apiRoute(api, { method: 'get', path: '/subscriptions/current/invoices', summary: "Your subscription's invoices", auth: 'user', responses: { 200: R.InvoicesResponse } }, requireAuth, async (req, res) => {
    const s = await current(req.user!.id);
    res.json({ invoices: (await subscriptions.listInvoices(s.subscription.id)).map(invoiceJson) });
  });
  apiRoute(api, { method: 'post', path: '/subscriptions/current/cancel', summary: 'Cancel at the end of the period', auth: 'user', request: { body: EmptyBody }, responses: { 200: R.SubscriptionResponse } }, requireAuth, async (req, res) => {
    validate(EmptyBody, req);
    await subscriptions.setCancelAtPeriodEnd(req.user!.id, true);
    res.json({ subscription: subscriptionJson(await current(req.user!.id)) });
  });
  apiRoute(api, { method: 'post', path: '/subscriptions/current/resume', summary: 'Undo a cancel before the period ends', auth: 'user', request: { body: EmptyBody }, responses: { 200: R.SubscriptionResponse } }, requireAuth, async (req, res) => {
    validate(EmptyBody, req);
    await subscriptions.setCancelAtPeriodEnd(req.user!.id, false);
    res.json({ subscription: subscriptionJson(await current(req.user!.id)) });
  });
  apiRoute(api, { method: 'post', path: '/subscriptions/current/plan', summary: 'Change plan: more credits now (prorated), or fewer from the next renewal', auth: 'user', request: { body: PlanBody }, responses: { 200: R.PlanChangeResponse } }, requireAuth, async (req, res) => {
    const body = validate(PlanBody, req);
    const change = await subscriptions.changePlan(req.user!.id, body.planId);
    res.json({ change, subscription: subscriptionJson(await current(req.user!.id)) });
  });
  apiRoute(api, { method: 'post', path: '/billing/portal', summary: 'A Stripe customer portal session (plan, cancel, card, invoices)', auth: 'user', responses: { 200: R.PortalResponse } }, requireAuth, async (req, res) => {
    res.json({ url: await subscriptions.portalUrl(req.user!) });
  });
  apiRoute(api, { method: 'get', path: '/admin/users/:id/subscription', summary: "A user's subscription and invoices", auth: 'admin', request: { params: UserParams }, responses: { 200: R.AdminSubscriptionResponse } }, requireAdmin, async (req, res) => {
    const { id } = validate(UserParams, req, 'params');
    const s = await current(id);
    res.json({ subscription: subscriptionJson(s), invoices: (await subscriptions.listInvoices(s.subscription.id)).map(invoiceJson) });
  });
  apiRoute(api, { method: 'post', path: '/admin/users/:id/subscription-grants', summary: "Grant the current period's plan credits by hand (once per period)", auth: 'admin', request: { params: UserParams, body: GrantBody }, responses: { 200: R.SubscriptionGrantResponse, 201: R.SubscriptionGrantResponse } }, requireAdmin, async (req, res) => {
    const { id } = validate(UserParams, req, 'params');
    const body = validate(GrantBody, req);
    const r = await adminGrant(req, id, body.reason);
    res.status(r.granted ? 201 : 200).json({ granted: r.granted, periodStart: r.periodStart.toISOString(), periodEnd: r.periodEnd.toISOString(), subscription: subscriptionJson(await current(id)) });
  });

  /** Runs a page action; an AppError becomes a flash on `back` instead of an error page. */
  async function formAction(req: Request, res: express.Response, back: string, run: () => Promise<string | { redirect: string }>) {
    try {
      const r = await run();
      if (typeof r === 'object') return res.redirect(303, r.redirect);
      setFlash(req, { type: 'success', message: r });
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      const detail = 'errors' in err && Array.isArray((err as { errors?: unknown }).errors) ? (err as unknown as { errors: Array<{ message: string }> }).errors.map((e) => e.message).join('; ') : err.detail;
      setFlash(req, { type: 'error', message: detail });
    }
    res.redirect(303, back);
  }

  const pages = express.Router();
  pages.post('/subscriptions/checkout', requireAuth, (req, res) =>
    formAction(req, res, '/account#subscription', async () => {
      const form = validate(PlanForm, req);
      return { redirect: (await subscriptions.createCheckout(req.user!, form.planId)).checkoutUrl };
    }),
  );
  pages.get('/subscriptions/success', requireAuth, async (req, res) => {
    const q = validate(SuccessQuery, req, 'query');
    const { paid, duplicate } = await subscriptions.confirmCheckout(q.session_id, req.user!.id);
    const s = await subscriptions.summary(req.user!.id);
    if (duplicate) {
      setFlash(req, { type: 'error', message: 'You already have a subscription, so this second one was cancelled; its unused time is credited to your next invoice. To get more credits each month, change your plan here.' });
      res.redirect(303, '/account#subscription');
      return;
    }
    setFlash(req, paid && s ? { type: 'success', message: `Welcome to ${s.plan.name}: your credits for this period are in your balance.` } : { type: 'error', message: 'The payment is not confirmed yet; refresh in a moment.' });
    res.redirect(303, '/account#subscription');
  });
  pages.post('/subscriptions/cancel', requireAuth, (req, res) =>
    formAction(req, res, '/account#subscription', async () => {
      validate(EmptyForm, req);
      await subscriptions.setCancelAtPeriodEnd(req.user!.id, true);
      return 'Your subscription ends at the end of this period. Your credits stay usable until they expire.';
    }),
  );
  pages.post('/subscriptions/resume', requireAuth, (req, res) =>
    formAction(req, res, '/account#subscription', async () => {
      validate(EmptyForm, req);
      await subscriptions.setCancelAtPeriodEnd(req.user!.id, false);
      return 'Your subscription continues.';
    }),
  );
  pages.post('/billing/portal', requireAuth, (req, res) =>
    formAction(req, res, '/account#subscription', async () => {
      validate(EmptyForm, req);
      return { redirect: await subscriptions.portalUrl(req.user!) };
    }),
  );
  pages.post('/admin/users/:id/subscription-grants', requireAdmin, async (req, res) => {
    const { id } = validate(UserParams, req, 'params');
    await formAction(req, res, `/admin/users/${id}#subscription`, async () => {
      const form = validate(GrantForm, req);
      const r = await adminGrant(req, id, form.reason);
      return r.granted ? "This period's subscription credits were granted." : 'This period was already credited; nothing changed.';
    });
  });
  return { api, pages };
}
