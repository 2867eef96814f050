import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { CheckoutService, PayOutcome } from './checkout-service.ts';
import { successRedirect } from './checkout-service.ts';
import {
  CHECKOUT_CSP,
  renderAuthentication,
  renderClosed,
  renderNotFound,
  renderPaymentForm,
} from './checkout-page-views.ts';
import type { CardForm } from './test-cards.ts';

/**
 * The hosted checkout page at `/c/pay/:id` (the session's `url`):
 * - `GET` shows the card form, the 3-D Secure step, or a message once complete/expired;
 * - `POST` (fields `email`, `cardNumber`, `cardExpiry`, `cardCvc`, `billingName`) pays; on success
 *   303 to `success_url` with `{CHECKOUT_SESSION_ID}` filled in; invalid fields → 400 with the
 *   form and inline errors; a decline → 402 with the form and the card error;
 * - `POST /c/pay/:id/authenticate` with `action=complete|fail` ends the 3-D Secure step.
 * Card data is never logged.
 */
export function createCheckoutPageRouter(checkout: CheckoutService, logger: Logger): express.Router {
  const router = express.Router();
  router.use('/c/pay', express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 }));

  function send(res: Response, status: number, html: string): void {
    res
      .status(status)
      .set({
        'Content-Type': 'text/html; charset=utf-8',
        'Content-Security-Policy': CHECKOUT_CSP,
        'Cache-Control': 'no-store',
        'X-Content-Type-Options': 'nosniff',
        'Referrer-Policy': 'same-origin',
      })
      .send(html);
  }

  function pagePath(id: string): string {
    return `/c/pay/${encodeURIComponent(id)}`;
  }

  function formFrom(req: Request): CardForm {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const text = (k: string) => (typeof body[k] === 'string' ? (body[k] as string) : '');
    return {
      email: text('email'),
      cardNumber: text('cardNumber'),
      cardExpiry: text('cardExpiry'),
      cardCvc: text('cardCvc'),
      billingName: text('billingName'),
    };
  }

  async function showPage(res: Response, id: string): Promise<void> {
    const view = await checkout.loadCheckout(id);
    if (!view) return send(res, 404, renderNotFound());
    if (view.session.status !== 'open') return send(res, 200, renderClosed(view));
    if (view.paymentIntent?.status === 'requires_action') return send(res, 200, renderAuthentication(view));
    send(res, 200, renderPaymentForm(view));
  }

  async function respond(res: Response, id: string, outcome: PayOutcome, form: Partial<CardForm>): Promise<void> {
    logger.info({ sessionId: id, outcome: outcome.kind }, 'stripe emulator: checkout attempt');
    switch (outcome.kind) {
      case 'not_found':
        return send(res, 404, renderNotFound());
      case 'succeeded':
        return res.redirect(303, outcome.redirectTo ?? pagePath(id));
      case 'requires_action':
        return res.redirect(303, pagePath(id));
      case 'closed': {
        // A second submit of a paid session (double click) lands where the first one went.
        const view = await checkout.loadCheckout(id);
        const next = view?.session.status === 'complete' ? successRedirect(view.session.success_url, id) : null;
        return res.redirect(303, next ?? pagePath(id));
      }
      case 'invalid':
      case 'declined': {
        const view = await checkout.loadCheckout(id);
        if (!view) return send(res, 404, renderNotFound());
        const html =
          outcome.kind === 'invalid'
            ? renderPaymentForm(view, { values: form, errors: outcome.errors })
            : renderPaymentForm(view, { values: form, alert: outcome.message });
        return send(res, outcome.kind === 'invalid' ? 400 : 402, html);
      }
    }
  }

  router.get('/c/pay/:id', async (req, res) => {
    await showPage(res, req.params.id);
  });

  router.post('/c/pay/:id', async (req, res) => {
    const id = req.params.id;
    const form = formFrom(req);
    const outcome = await checkout.pay(id, form);
    await respond(res, id, outcome, form);
  });

  router.post('/c/pay/:id/authenticate', async (req, res) => {
    const id = req.params.id;
    const action = (req.body as Record<string, unknown> | undefined)?.action;
    if (action !== 'complete' && action !== 'fail') return res.redirect(303, pagePath(id));
    const outcome = await checkout.authenticate(id, action);
    if (outcome.kind === 'nothing_to_authenticate') return res.redirect(303, pagePath(id));
    await respond(res, id, outcome, {});
  });

  return router;
}
