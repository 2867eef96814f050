import express, { type Request } from 'express';
import { z } from 'zod';
import type { Feature, FeatureDeps } from '../app.ts';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { requestContext } from '../auth/audit-log.ts';
import { setFlash } from '../auth/session.ts';
import { AppError, NotFoundError, ValidationError } from '../http/errors.ts';
import { findUsersByIds } from '../auth/users-store.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { createRefundPages } from './refund-pages.ts';
import { idempotencyKeyOf, validate } from '../http/validate.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { decodeCursor, encodeCursor } from '../ledger/ledger-service.ts';
import { formatMoney, formatPricePerCredit } from './money.ts';
import type { CreditPackage, Payment, PaymentRefund } from './payments-store.ts';

const CheckoutBody = z.object({ packageId: z.string().min(1).max(64) }).strict();
const PageCheckoutBody = z.object({ packageId: z.string().min(1).max(64), _csrf: z.string().optional() }).strict();
const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20), cursor: z.string().max(500).optional() }).strict();
const IdParams = z.object({ id: z.uuid() }).strict();
const RefundBody = z.object({ amountCents: z.number().int().min(1).optional() }).strict();
const SuccessQuery = z.object({ session_id: z.string().min(1).max(255) }).strict();
const RefundForm = z
  .object({
    amount: z.string().trim().regex(/^(\d+(\.\d{1,2})?)?$/, 'must be an amount like 5 or 5.00').optional(),
    idempotencyKey: z.uuid().optional(),
    _csrf: z.string().optional(),
  })
  .strict();
const CancelQuery = z.object({ payment_id: z.uuid().optional() });

/** "5" / "5.5" / "5.00" → 500 / 550 / 500 cents, from the decimal string (no floats). Empty → undefined. */
export function parseCents(amount: string | undefined): number | undefined {
  if (!amount) return undefined;
  const [whole, frac = ''] = amount.split('.');
  return Number(whole) * 100 + Number(frac.padEnd(2, '0'));
}

/** JSON of a credit pack: credits as numbers (≤ 3 decimals), price in cents. */
export function packageJson(p: CreditPackage) {
  return {
    id: p.id,
    name: p.name,
    credits: millicreditsToCredits(p.creditsMillicredits),
    bonusCredits: millicreditsToCredits(p.bonusMillicredits),
    amountCents: p.amountCents,
    currency: p.currency,
  };
}

/** JSON of a payment (and its refunds when given). */
export function paymentJson(p: Payment, refunds?: PaymentRefund[]) {
  return {
    id: p.id,
    status: p.status,
    packageId: p.packageId,
    credits: millicreditsToCredits(p.creditsMillicredits),
    bonusCredits: millicreditsToCredits(p.bonusMillicredits),
    amountCents: p.amountCents,
    currency: p.currency,
    refundedCents: p.refundedCents,
    createdAt: p.createdAt.toISOString(),
    paidAt: p.paidAt?.toISOString() ?? null,
    ...(refunds
      ? { refunds: refunds.map((r) => ({ id: r.id, amountCents: r.amountCents, status: r.status, reason: r.reason, createdAt: r.createdAt.toISOString() })) }
      : {}),
  };
}

/** View model of a payment for pages: JSON plus formatted money. */
function paymentView(p: Payment, refunds?: PaymentRefund[]) {
  return {
    ...paymentJson(p, refunds),
    price: formatMoney(p.amountCents, p.currency),
    refunded: p.refundedCents > 0 ? formatMoney(p.refundedCents, p.currency) : null,
    refundable: p.paymentIntentId !== null && (p.status === 'paid' || p.status === 'partially_refunded') ? p.amountCents - p.refundedCents : 0,
    refundableMoney: formatMoney(p.amountCents - p.refundedCents, p.currency),
    refundViews: refunds?.map((r) => ({ ...r, money: formatMoney(r.amountCents, p.currency) })),
  };
}

/** View model of a pack for the pricing page. */
function packView(p: CreditPackage) {
  return {
    ...packageJson(p),
    price: formatMoney(p.amountCents, p.currency),
    perCredit: formatPricePerCredit(p.amountCents, p.creditsMillicredits + p.bonusMillicredits, p.currency),
  };
}

/**
 * Buying credits: the Stripe webhook (raw body, mounted before the body parsers), the checkout and
 * payments API, the admin refund API, and the /pricing and /checkout pages.
 */
export function createPaymentsFeature(deps: FeatureDeps): Feature {
  const { payments } = deps.services;

  /** Refunds through Stripe for the signed-in admin and records it in the audit log. */
  async function refundAsAdmin(req: Request, paymentId: string, amountCents: number | undefined, idempotencyKey?: string) {
    const refund = await payments.refund(paymentId, amountCents, `admin:${req.user!.id}`, idempotencyKey);
    await deps.services.audit.record({
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
  raw.post('/api/payments/webhook', express.raw({ type: () => true, limit: '1mb' }), async (req, res) => {
    const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const result = await payments.handleWebhook(body, req.get('Stripe-Signature'));
    res.json({ received: true, duplicate: result.duplicate, outcome: result.outcome });
  });

  const api = express.Router();
  api.get('/credits/packages', async (_req, res) => {
    res.json({ packages: (await payments.listPackages()).map(packageJson) });
  });
  api.post('/payments/checkout', requireAuth, async (req, res) => {
    const body = validate(CheckoutBody, req);
    const result = await payments.createCheckout(req.user!, body.packageId, idempotencyKeyOf(req));
    res.status(201).json({ paymentId: result.payment.id, sessionId: result.sessionId, checkoutUrl: result.checkoutUrl });
  });
  api.get('/payments', requireAuth, async (req, res) => {
    const q = validate(ListQuery, req, 'query');
    const items = await payments.listPayments(req.user!.id, q.limit + 1, q.cursor ? decodeCursor(q.cursor) : undefined);
    const more = items.length > q.limit;
    if (more) items.pop();
    const last = items.at(-1);
    res.json({ payments: items.map((p) => paymentJson(p)), nextCursor: more && last ? encodeCursor(last.createdAt, last.id) : null });
  });
  api.get('/payments/:id', requireAuth, async (req, res) => {
    const { id } = validate(IdParams, req, 'params');
    const { payment, refunds } = await payments.getPayment(id, req.user!.id);
    res.json({ payment: paymentJson(payment, refunds) });
  });
  api.post('/admin/payments/:id/refunds', requireAdmin, async (req, res) => {
    const { id } = validate(IdParams, req, 'params');
    const body = validate(RefundBody, req);
    const refund = await refundAsAdmin(req, id, body.amountCents, idempotencyKeyOf(req));
    const { payment, refunds } = await payments.getPayment(id, null);
    res.status(201).json({ refund: { id: refund.id, amountCents: refund.amount, status: refund.status }, payment: paymentJson(payment, refunds) });
  });

  const pages = express.Router();
  pages.get('/pricing', async (_req, res) => {
    const packs = (await payments.listPackages()).map(packView);
    res.render('payments/pricing', { title: 'Pricing', packs, stripeMode: deps.config.stripe.useEmulator ? 'emulator' : 'stripe' });
  });
  pages.post('/checkout', requireAuth, async (req, res) => {
    const body = validate(PageCheckoutBody, req);
    const result = await payments.createCheckout(req.user!, body.packageId);
    res.redirect(303, result.checkoutUrl);
  });
  pages.get('/checkout/success', requireAuth, async (req, res) => {
    const q = validate(SuccessQuery, req, 'query');
    const { payment, paid } = await payments.confirmCheckout(q.session_id, req.user!.id);
    const balance = await deps.ledger.getBalance(req.user!.id);
    res.locals.headerBalance = millicreditsToCredits(balance.available);
    res.render('payments/success', {
      title: paid ? 'Payment received' : 'Payment pending',
      paid,
      payment: paymentJson(payment),
      price: formatMoney(payment.amountCents, payment.currency),
      available: millicreditsToCredits(balance.available),
    });
  });
  pages.get('/account', async (req, res, next) => {
    // The purchases section of the account page (rendered by the credits feature).
    if (req.user) res.locals.payments = (await payments.listPayments(req.user.id, 20)).map((p) => paymentView(p));
    next();
  });
  pages.get('/account/payments/:id', requireAuth, async (req, res) => {
    const { id } = validate(IdParams, req, 'params');
    const { payment, refunds } = await payments.getPayment(id, req.user!.id);
    // Only a paid purchase has a receipt (an open or abandoned checkout is not one).
    if (!payment.paidAt) throw new NotFoundError('receipt: this purchase was not paid');
    res.render('payments/receipt', { title: 'Receipt', payment: paymentView(payment, refunds), fmt: viewHelpers });
  });
  pages.get('/admin/users/:id', async (req, res, next) => {
    // The payments section (with refund forms) of the admin's user page (rendered by the admin feature).
    const id = String(req.params.id);
    if (req.user?.role === 'admin' && /^[0-9a-f-]{36}$/i.test(id)) {
      const list = await payments.listPayments(id, 20);
      res.locals.adminPayments = await Promise.all(list.map(async (p) => paymentView(p, (await payments.getPayment(p.id, null)).refunds)));
    }
    next();
  });
  pages.post('/admin/payments/:id/refunds', requireAdmin, async (req, res) => {
    const { id } = validate(IdParams, req, 'params');
    const { payment } = await payments.getPayment(id, null);
    const back = `/admin/users/${payment.userId}#payments`;
    try {
      const form = validate(RefundForm, req);
      const refund = await refundAsAdmin(req, id, parseCents(form.amount), form.idempotencyKey);
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
  pages.use(createRefundPages({ payments, people: async (ids) => new Map((await findUsersByIds(deps.db, ids)).map((u) => [u.id, { name: u.name, email: u.email }])) }));
  return { raw, api, pages };
}
