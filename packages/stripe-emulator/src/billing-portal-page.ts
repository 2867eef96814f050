import crypto from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { BillingService } from './billing-service.ts';
import { escapeHtml as h } from './checkout-page-views.ts';
import { formatAmount } from './currency.ts';
import { inTransaction, type Db } from './db.ts';
import { AUTOMATIC } from './stripe-emulator-events.ts';
import { StripeApiError } from './stripe-errors.ts';
import { validateCardForm } from './test-cards.ts';

/**
 * The customer portal of a billing portal session (`session.url`, `/p/session/:id`): a plain page
 * with what Stripe's portal offers Tally's customers: the subscription (plan, period, status),
 * change plan (an upgrade is prorated and charged at once, a downgrade applies from the next
 * renewal), cancel at period end and resume, update the card (open invoices are retried with it),
 * and the invoice list. No script; every action is a form post answered with a 303 back here.
 */

type Json = Record<string, unknown>;

const STYLE = `
*,*::before,*::after{box-sizing:border-box}
:root{color-scheme:light dark;--fg:#1a1f36;--muted:#5b6475;--bg:#f6f8fa;--card:#fff;--line:#e3e8ee;--accent:#4f46e5;--accent-fg:#fff;--warn-bg:#fde8ec;--warn-fg:#8a0a2e;--ok-bg:#e6f4ea;--ok-fg:#0f5132}
@media(prefers-color-scheme:dark){:root{--fg:#e6e8ee;--muted:#b4bccb;--bg:#11141b;--card:#1b1f2a;--line:#323847;--accent:#a5a0ff;--accent-fg:#11141b;--warn-bg:#4a1624;--warn-fg:#ffd2dc;--ok-bg:#12372a;--ok-fg:#c8f2d9}}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg)}
main{max-width:760px;margin:0 auto;padding:1.5rem 1rem;display:grid;gap:1.25rem}
section{background:var(--card);border:1px solid var(--line);border-radius:12px;padding:1.25rem}
h1{margin:0;font-size:1.5rem}h2{margin:0 0 .75rem;font-size:1.1rem}
a{color:var(--accent)}
a:focus-visible,button:focus-visible,input:focus-visible,select:focus-visible{outline:3px solid var(--accent);outline-offset:2px}
.muted{color:var(--muted)}
.flash{margin:0;padding:.75rem 1rem;border-radius:6px;background:var(--ok-bg);color:var(--ok-fg)}
.flash.error{background:var(--warn-bg);color:var(--warn-fg)}
label{display:block;margin:.5rem 0 .25rem;font-weight:600;font-size:.9rem}
input,select{width:100%;padding:.55rem .7rem;font:inherit;color:inherit;background:var(--bg);border:1px solid var(--line);border-radius:6px}
.row{display:grid;grid-template-columns:1fr 1fr;gap:.75rem}
button{margin-top:.75rem;padding:.6rem 1rem;font:inherit;font-weight:700;color:var(--accent-fg);background:var(--accent);border:0;border-radius:6px;cursor:pointer}
table{width:100%;border-collapse:collapse;font-size:.95rem}th,td{text-align:left;padding:.4rem .3rem;border-bottom:1px solid var(--line)}
.table{overflow-x:auto}
dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem;margin:0}dt{font-weight:600}dd{margin:0}
`;
const CSP = `default-src 'none'; style-src 'sha256-${crypto.createHash('sha256').update(STYLE).digest('base64')}'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'`;

const date = (unixSeconds: number) => new Date(unixSeconds * 1000).toISOString().slice(0, 10);
const STATUS_WORDS: Record<string, string> = { active: 'Active', past_due: 'Past due: the last payment failed', canceled: 'Cancelled', incomplete: 'Incomplete' };

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>${h(title)}</title><style>${STYLE}</style></head><body><main>${body}</main></body></html>`;
}

export function createBillingPortalRouter(deps: { db: Db; billing: BillingService; clock: () => Date; logger: Logger }): express.Router {
  const { db, billing, clock } = deps;
  const router = express.Router();
  router.use('/p/session', express.urlencoded({ extended: false, limit: '16kb', parameterLimit: 20 }));

  const send = (res: Response, status: number, html: string) => {
    res.status(status).set({ 'Content-Security-Policy': CSP, 'Cache-Control': 'no-store', 'Referrer-Policy': 'no-referrer' }).type('html').send(html);
  };
  const path = (id: string, flash?: string, error = false) => `/p/session/${encodeURIComponent(id)}${flash ? `?${error ? 'error' : 'done'}=${encodeURIComponent(flash)}` : ''}`;

  async function load(req: Request): Promise<{ session: Json; subscription: Json | undefined } | undefined> {
    const session = await billing.find(db, 'billing_portal.session', String(req.params.id));
    if (!session) return undefined;
    const subs = await billing.list(db, 'subscription', { customer_id: String(session.customer) }, 10);
    const subscription = subs.data.find((s) => s.status !== 'canceled') ?? subs.data[0];
    return { session, subscription };
  }

  router.get('/p/session/:id', async (req, res) => {
    const loaded = await load(req);
    if (!loaded) return send(res, 404, layout('Not found', '<section><h1>This portal link is not valid</h1><p>Ask the site for a new one.</p></section>'));
    const { session, subscription: sub } = loaded;
    const customer = await billing.customerRow(db, String(session.customer));
    const invoices = await billing.list(db, 'invoice', { customer_id: customer.id }, 24);
    const flash = typeof req.query.done === 'string' ? `<p class="flash" role="status">${h(req.query.done)}</p>` : typeof req.query.error === 'string' ? `<p class="flash error" role="alert">${h(req.query.error)}</p>` : '';
    const back = session.return_url ? `<p><a href="${h(String(session.return_url))}">← Return to the site</a></p>` : '';
    let subHtml = '<section><h2>Subscription</h2><p>No subscription.</p></section>';
    if (sub) {
      const item = (sub.items as { data: Json[] }).data[0]!;
      const price = item.price as Json;
      const product = await billing.find(db, 'product', String(price.product));
      const interval = (price.recurring as { interval: string }).interval;
      const prices = (await billing.listPrices(db, { active: true })).data.filter(
        (p) => p.lookup_key && p.id !== price.id && p.recurring && (p.recurring as { interval: string }).interval === interval && p.currency === price.currency,
      );
      const options = await Promise.all(
        prices.map(async (p) => `<option value="${h(String(p.id))}">${h(String((await billing.find(db, 'product', String(p.product)))?.name ?? p.id))} — ${h(formatAmount(Number(p.unit_amount), String(p.currency)))} / ${h(interval)}</option>`),
      );
      const live = sub.status !== 'canceled';
      subHtml = `<section aria-labelledby="sub-h"><h2 id="sub-h">Subscription</h2><dl>
<dt>Plan</dt><dd>${h(String(product?.name ?? 'Subscription'))} — ${h(formatAmount(Number(price.unit_amount), String(price.currency)))} / ${h(interval)}</dd>
<dt>Status</dt><dd>${h(STATUS_WORDS[String(sub.status)] ?? String(sub.status))}</dd>
<dt>${sub.cancel_at_period_end ? 'Ends on' : 'Renews on'}</dt><dd>${live ? date(Number(item.current_period_end)) : '—'}</dd></dl>
${live && options.length > 0 ? `<form method="post" action="${path(String(session.id))}/change"><label for="price">Change plan</label><select id="price" name="price">${options.join('')}</select><button type="submit">Change plan</button><p class="muted">A dearer plan starts now, prorated and charged at once; a cheaper one from the next renewal.</p></form>` : ''}
${live ? `<form method="post" action="${path(String(session.id))}/${sub.cancel_at_period_end ? 'resume' : 'cancel'}"><button type="submit">${sub.cancel_at_period_end ? 'Resume subscription' : 'Cancel at the end of the period'}</button></form>` : ''}
</section>`;
    }
    const card = customer.default_payment_method;
    const cardHtml = `<section aria-labelledby="card-h"><h2 id="card-h">Payment method</h2><p>${card ? `${h(card.card.brand)} ending in ${h(card.card.last4)}, expires ${card.card.exp_month}/${card.card.exp_year}` : 'No card saved.'}</p>
<form method="post" action="${path(String(session.id))}/card"><label for="cardNumber">Card number</label><input id="cardNumber" name="cardNumber" inputmode="numeric" autocomplete="cc-number" required>
<div class="row"><div><label for="cardExpiry">Expiry (MM / YY)</label><input id="cardExpiry" name="cardExpiry" autocomplete="cc-exp" required></div><div><label for="cardCvc">CVC</label><input id="cardCvc" name="cardCvc" inputmode="numeric" autocomplete="cc-csc" required></div></div>
<label for="billingName">Name on card</label><input id="billingName" name="billingName" autocomplete="cc-name" required><button type="submit">Update card</button>
<p class="muted">Test cards: 4242 4242 4242 4242 pays; 4000 0000 0000 0341 is saved but declined when charged.</p></form></section>`;
    const rows = invoices.data
      .map((i) => `<tr><td>${h(String(i.number))}</td><td>${date(Number(i.created))}</td><td>${h(formatAmount(Number(i.amount_due), String(i.currency)))}</td><td>${h(i.status === 'open' ? 'Unpaid' : String(i.status) === 'paid' ? 'Paid' : String(i.status))}</td></tr>`)
      .join('');
    const invoicesHtml = `<section aria-labelledby="inv-h"><h2 id="inv-h">Invoices</h2>${rows ? `<div class="table" role="region" aria-label="Invoices table" tabindex="0"><table><thead><tr><th scope="col">Number</th><th scope="col">Date</th><th scope="col">Amount</th><th scope="col">Status</th></tr></thead><tbody>${rows}</tbody></table></div>` : '<p>No invoices yet.</p>'}</section>`;
    send(res, 200, layout('Billing — test mode', `<header><p class="muted">Stripe emulator · test mode</p><h1>Manage your billing</h1></header>${back}${flash}${subHtml}${cardHtml}${invoicesHtml}`));
  });

  async function act(req: Request, res: Response, run: (session: Json, sub: Json) => Promise<string>) {
    const loaded = await load(req);
    if (!loaded) return send(res, 404, layout('Not found', '<section><h1>This portal link is not valid</h1></section>'));
    if (!loaded.subscription) return res.redirect(303, path(String(loaded.session.id), 'There is no subscription to change.', true));
    try {
      res.redirect(303, path(String(loaded.session.id), await run(loaded.session, loaded.subscription)));
    } catch (err) {
      if (!(err instanceof StripeApiError)) throw err;
      res.redirect(303, path(String(loaded.session.id), String((err.body as { message?: string }).message ?? 'That did not work.'), true));
    }
  }

  router.post('/p/session/:id/cancel', (req, res) =>
    act(req, res, async (_s, sub) => {
      await inTransaction(db, (trx) => billing.updateSubscription(trx, AUTOMATIC, String(sub.id), { cancel_at_period_end: true }));
      return 'Your subscription will end at the end of the period.';
    }),
  );
  router.post('/p/session/:id/resume', (req, res) =>
    act(req, res, async (_s, sub) => {
      await inTransaction(db, (trx) => billing.updateSubscription(trx, AUTOMATIC, String(sub.id), { cancel_at_period_end: false }));
      return 'Your subscription continues.';
    }),
  );
  router.post('/p/session/:id/change', (req, res) =>
    act(req, res, async (_s, sub) => {
      const priceId = String((req.body as Record<string, unknown>).price ?? '');
      const current = ((sub.items as { data: Json[] }).data[0]!.price as Json);
      const next = await billing.get(db, 'price', priceId, 'price');
      const upgrade = Number(next.unit_amount) > Number(current.unit_amount);
      await inTransaction(db, (trx) =>
        billing.updateSubscription(trx, AUTOMATIC, String(sub.id), { items: [{ price: priceId }], proration_behavior: upgrade ? 'always_invoice' : 'none' }),
      );
      return upgrade ? 'Plan changed; the difference was charged.' : 'Plan changed from the next renewal.';
    }),
  );
  router.post('/p/session/:id/card', (req, res) =>
    act(req, res, async (session) => {
      const body = req.body as Record<string, string | undefined>;
      const checked = validateCardForm(
        { email: 'portal@example.com', cardNumber: body.cardNumber ?? '', cardExpiry: body.cardExpiry ?? '', cardCvc: body.cardCvc ?? '', billingName: body.billingName ?? '' },
        { now: clock(), emailRequired: false, fallbackEmail: null },
      );
      if (!checked.ok) throw new StripeApiError(400, { type: 'card_error', message: Object.values(checked.errors).join(' ') });
      const result = await billing.updateCard(String(session.customer), { details: checked.card.details, number: checked.card.number });
      if (result.failed > 0) return 'Card saved, but the open invoice could not be paid with it.';
      return result.paid > 0 ? 'Card saved and the open invoice paid.' : 'Card saved.';
    }),
  );
  return router;
}
