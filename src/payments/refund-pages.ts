import crypto from 'node:crypto';
import express from 'express';
import { requireAdmin } from '../auth/auth-middleware.ts';
import { setFlash } from '../auth/session.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { formatCredits } from '../ledger/credits.ts';
import { formatMoney, parseMoney, toDecimal } from '@tally/money';
import type { Payments } from './payments-service.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export interface RefundPagesDeps {
  payments: Pick<Payments, 'getPayment'>;
  /** Names and emails of users by id (the buyer, shown on the confirmation). */
  people(ids: readonly string[]): Promise<ReadonlyMap<string, { name: string; email: string }>>;
}

/**
 * The confirmation step of an admin refund (issue 10): `GET /admin/payments/:id/refund?amount=`
 * (the user page's refund form is a GET form) shows whose payment it is, the amount in money, and,
 * when the amount was left empty, that it is the whole remaining amount; the share of the pack's
 * credits the refund takes back; then a "Refund" button that posts to
 * `POST /admin/payments/:id/refunds` with a one-time idempotency key (a double click refunds once).
 * A bad amount goes back to the user page with the reason (303).
 */
export function createRefundPages(deps: RefundPagesDeps): express.Router {
  const pages = express.Router();
  pages.get('/admin/payments/:id/refund', requireAdmin, async (req, res) => {
    const id = String(req.params.id);
    if (!UUID.test(id)) return res.redirect(303, '/admin');
    const { payment, refunds } = await deps.payments.getPayment(id, null);
    const back = `/admin/users/${payment.userId}#payments`;
    const raw = typeof req.query.amount === 'string' ? req.query.amount.trim().slice(0, 30) : '';
    const refundable = ['paid', 'partially_refunded'].includes(payment.status) && payment.paymentIntentId ? payment.amountCents - payment.refundedCents : 0;
    const unsettled = refunds.filter((r) => r.status !== 'failed' && r.status !== 'canceled').reduce((n, r) => n + r.amountCents, 0) - payment.refundedCents;
    const fail = (message: string) => {
      setFlash(req, { type: 'error', message: `Refund not made: ${message}` });
      res.redirect(303, back);
    };
    if (unsettled > 0) return fail('a refund of this payment is still pending; wait until Stripe confirms it.');
    if (refundable <= 0) return fail('this payment has nothing left to refund.');
    let typed: number | undefined;
    try {
      typed = parseMoney(raw, payment.currency);
    } catch (err) {
      return fail(`“${raw}” ${(err as Error).message}.`);
    }
    const cents = typed ?? refundable;
    if (cents < 1 || cents > refundable) return fail(`the amount must be between ${formatMoney(1, payment.currency)} and ${formatMoney(refundable, payment.currency)}.`);
    const buyer = (await deps.people([payment.userId])).get(payment.userId);
    const packCredits = payment.creditsMillicredits + payment.bonusMillicredits;
    const clawback = Math.floor((packCredits * cents) / payment.amountCents);
    res.render('admin/refund-confirm', {
      title: 'Confirm a refund · Admin',
      payment: {
        id: payment.id,
        userId: payment.userId,
        pack: payment.packageId.charAt(0).toUpperCase() + payment.packageId.slice(1),
        price: formatMoney(payment.amountCents, payment.currency),
        paidAt: payment.paidAt,
        refundedMoney: payment.refundedCents > 0 ? formatMoney(payment.refundedCents, payment.currency) : null,
      },
      buyer,
      whole: raw === '' || cents === refundable,
      amountMoney: formatMoney(cents, payment.currency),
      amountField: toDecimal(cents, payment.currency),
      refundableMoney: formatMoney(refundable, payment.currency),
      clawbackCredits: formatCredits(clawback),
      back,
      idempotencyKey: crypto.randomUUID(),
      fmt: viewHelpers,
    });
  });
  return pages;
}
