import express, { type Request } from 'express';
import { z } from 'zod';
import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { requestContext } from '../auth/audit-log.ts';
import { setFlash } from '../auth/session.ts';
import { AppError, NotFoundError, ValidationError } from '../http/errors.ts';
import { findUsersByIds } from '../auth/users-store.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { createRefundPages } from './refund-pages.ts';
import { idempotencyKeyOf, validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import { CheckoutResponse, PackagesResponse, PaymentResponse, PaymentsPage, RefundResponse, StripeEventBody, WebhookReceipt } from './payments-responses.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { paginate, timeKeyCursor } from '../pagination.ts';
import { formatMoney, parseMoney } from '@tally/money';
import { planView } from '../subscriptions/subscriptions-json.ts';
import { packView, packageJson, paymentJson, paymentView } from './payments-json.ts';

const CheckoutBody = z.object({ packageId: z.string().min(1).max(64), teamId: z.uuid().optional(), saveCard: z.boolean().optional() }).strict();
const PageCheckoutBody = z.object({ packageId: z.string().min(1).max(64), saveCard: z.literal('on').optional(), _csrf: z.string().optional() }).strict();
const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20), cursor: z.string().max(500).optional() }).strict();
const IdParams = z.object({ id: z.uuid() }).strict();
const RefundBody = z.object({ amountCents: z.number().int().min(1).optional() }).strict();
const SuccessQuery = z.object({ session_id: z.string().min(1).max(255) }).strict();
const RefundForm = z
  .object({
    amount: z.string().trim().max(30).optional(),
    idempotencyKey: z.uuid().optional(),
    _csrf: z.string().optional(),
  })
  .strict();
const CancelQuery = z.object({ payment_id: z.uuid().optional() });

/**
 * Buying credits: the Stripe webhook (raw body, mounted before the body parsers), the checkout and
 * payments API, the admin refund API, and the /pricing and /checkout pages.
 */
export function createPaymentsFeature(services: Services): Feature {
  const { payments, stripeWebhook, audit, ledger, config } = services;

  /** Refunds through Stripe for the signed-in admin and records it in the audit log. */
  async function refundAsAdmin(req: Request, paymentId: string, amountCents: number | undefined, idempotencyKey?: string) {
    const refund = await payments.refund(paymentId, amountCents, `admin:${req.user!.id}`, idempotencyKey);
    await audit.record({
      actor: `admin:${req.user!.id}`,
      actorUserId: req.user!.id,
      action: 'admin.payment_refunded',
      target: { type: 'payment', id: paymentId },
      details: { refundId: refund.id, amountCents: refund.amount },
      ...requestContext(req),
    });
    return refund;
  }

  const raw = express.Router();
  apiRoute(
    raw,
    {
      method: 'post',
      path: '/api/payments/webhook',
      summary: "Stripe's events, verified by signature; each event id is handled once",
      description: 'Signed but malformed → 400 `invalid_event`; unknown event types → 200 `ignored`; both recorded for admins. A bad signature → 400, nothing stored.',
      tags: ['payments'],
      auth: 'stripe',
      request: { body: StripeEventBody },
      responses: { 200: WebhookReceipt },
    },
    express.raw({ type: () => true, limit: '1mb' }),
    async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const result = await stripeWebhook.handle(body, req.get('Stripe-Signature'));
    res.json({ received: true, duplicate: result.duplicate, outcome: result.outcome });
    },
  );

  const api = express.Router();
  apiRoute(api, { method: 'get', path: '/credits/packages', summary: 'Credit packs for sale', auth: 'none', responses: { 200: PackagesResponse } }, async (_req, res) => {
    res.json({ packages: (await payments.listPackages()).map(packageJson) });
  });
  apiRoute(api, { method: 'post', path: '/payments/checkout', summary: 'Start buying a pack: a Stripe Checkout Session', auth: 'user', request: { body: CheckoutBody, idempotencyKey: true }, responses: { 201: CheckoutResponse } }, requireAuth, async (req, res) => {
    const body = validate(CheckoutBody, req);
    // Owners and admins buy for their team (404 for a team they are not in, 403 for a member).
    if (body.teamId) await services.teams.assertCanBuy(body.teamId, req.user!.id);
    const result = await payments.createCheckout(req.user!, body.packageId, idempotencyKeyOf(req), body.teamId, { saveCard: body.saveCard === true });
    res.status(201).json({ paymentId: result.payment.id, sessionId: result.sessionId, checkoutUrl: result.checkoutUrl });
  });
  apiRoute(api, { method: 'get', path: '/payments', summary: 'Your payments, newest first', auth: 'user', request: { query: ListQuery }, responses: { 200: PaymentsPage } }, requireAuth, async (req, res) => {
    const q = validate(ListQuery, req, 'query');
    const page = await paginate({ limit: q.limit, max: 100, cursor: q.cursor, codec: timeKeyCursor }, (n, after) =>
      payments.listPayments(req.user!.id, n, after),
    );
    res.json({ payments: page.items.map((p) => paymentJson(p)), nextCursor: page.nextCursor });
  });
  apiRoute(api, { method: 'get', path: '/payments/:id', summary: 'One of your payments, with its refunds', auth: 'user', request: { params: IdParams }, responses: { 200: PaymentResponse } }, requireAuth, async (req, res) => {
    const { id } = validate(IdParams, req, 'params');
    const { payment, refunds } = await payments.getPayment(id, req.user!.id);
    res.json({ payment: paymentJson(payment, refunds) });
  });
  apiRoute(api, { method: 'post', path: '/admin/payments/:id/refunds', summary: 'Refund a payment through Stripe (all that is left, or `amountCents`)', auth: 'admin', request: { params: IdParams, body: RefundBody, idempotencyKey: true }, responses: { 201: RefundResponse } }, requireAdmin, async (req, res) => {
    const { id } = validate(IdParams, req, 'params');
    const body = validate(RefundBody, req);
    const refund = await refundAsAdmin(req, id, body.amountCents, idempotencyKeyOf(req));
    const { payment, refunds } = await payments.getPayment(id, null);
    res.status(201).json({ refund: { id: refund.id, amountCents: refund.amount, status: refund.status }, payment: paymentJson(payment, refunds) });
  });

  const pages = express.Router();
  pages.get('/pricing', async (_req, res) => {
    const packs = (await payments.listPackages()).map(packView);
    // Subscription plans beside the packs (views/subscriptions/_plans.ejs).
    const plans = (await services.subscriptions.listPlans()).map(planView);
    res.render('payments/pricing', { title: 'Pricing', packs, plans, stripeMode: config.stripe.useEmulator ? 'emulator' : 'stripe' });
  });
  pages.post('/checkout', requireAuth, async (req, res) => {
    const body = validate(PageCheckoutBody, req);
    const result = await payments.createCheckout(req.user!, body.packageId, undefined, undefined, { saveCard: body.saveCard === 'on' });
    res.redirect(303, result.checkoutUrl);
  });
  pages.get('/checkout/success', requireAuth, async (req, res) => {
    const q = validate(SuccessQuery, req, 'query');
    const { payment, paid } = await payments.confirmCheckout(q.session_id, req.user!.id);
    const balance = await ledger.getBalance(req.user!.id);
    // A pack bought as a gift (issue 17) gives the buyer a code to pass on, not credits.
    const gift = await services.growth.giftPacks.giftOf(payment.id, req.user!.id);
    res.locals.headerBalance = millicreditsToCredits(balance.available);
    res.render('payments/success', {
      title: paid ? 'Payment received' : 'Payment pending',
      paid,
      gift,
      payment: paymentJson(payment),
      price: formatMoney(payment.amountCents, payment.currency),
      available: millicreditsToCredits(balance.available),
    });
  });
  pages.get('/account/payments/:id', requireAuth, async (req, res) => {
    const { id } = validate(IdParams, req, 'params');
    const { payment, refunds } = await payments.getPayment(id, req.user!.id);
    // Only a paid purchase has a receipt (an open or abandoned checkout is not one).
    if (!payment.paidAt) throw new NotFoundError('receipt: this purchase was not paid');
    // The same fields as the PDF receipt (number, seller, card): src/insight/receipts-service.ts.
    const receipt = await services.insight.receipts.view(id, req.user!.id);
    res.render('payments/receipt', { title: 'Receipt', payment: paymentView(payment, refunds), receipt, fmt: viewHelpers });
  });
  pages.post('/admin/payments/:id/refunds', requireAdmin, async (req, res) => {
    const { id } = validate(IdParams, req, 'params');
    const { payment } = await payments.getPayment(id, null);
    const back = `/admin/users/${payment.userId}#payments`;
    try {
      const form = validate(RefundForm, req);
      let amount: number | undefined;
      try {
        amount = parseMoney(form.amount ?? '', payment.currency);
      } catch (err) {
        throw new ValidationError([{ field: 'body.amount', message: (err as Error).message }]);
      }
      const refund = await refundAsAdmin(req, id, amount, form.idempotencyKey);
      setFlash(req, { type: 'success', message: `Refunded ${formatMoney(refund.amount, payment.currency)}: pending until Stripe confirms it; then the credits are taken back.` });
    } catch (err) {
      if (!(err instanceof ValidationError) && !(err instanceof AppError)) throw err;
      const detail = err instanceof ValidationError ? err.errors.map((e) => e.message).join('; ') : err.detail;
      setFlash(req, { type: 'error', message: `Refund not made: ${detail}` });
    }
    res.redirect(303, back);
  });
  pages.get('/checkout/cancel', requireAuth, async (req, res) => {
    // An abandoned checkout is closed now, so it never shows as "awaiting payment" (issue 10).
    const q = CancelQuery.safeParse(req.query);
    const payment = q.success && q.data.payment_id ? await payments.abandonCheckout(q.data.payment_id, req.user!.id) : undefined;
    res.render('payments/cancel', { title: 'Checkout cancelled', paid: payment ? payment.status !== 'pending' && payment.status !== 'expired' : false });
  });
  pages.use(createRefundPages({ payments, people: async (ids) => new Map((await findUsersByIds(services.db, ids)).map((u) => [u.id, { name: u.name, email: u.email }])) }));
  return { raw, api, pages };
}
