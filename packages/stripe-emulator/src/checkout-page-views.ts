import crypto from 'node:crypto';
import { formatAmount } from './currency.ts';
import type { CheckoutView } from './checkout-service.ts';
import { successRedirect } from './checkout-service.ts';
import { TEST_CARDS, type CardForm, type FieldErrors } from './test-cards.ts';

/**
 * HTML of the hosted checkout page: a self-contained card form (inline CSS, no script, no
 * external requests). Every value is escaped with {@link escapeHtml}. One `<h1>` per page, a
 * `<label>` for every field, errors tied to fields with `aria-describedby`, and plain forms so
 * Tab/Enter is all a keyboard user needs.
 */

/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const h = escapeHtml;

const STYLE = `
*,*::before,*::after{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1f36;background:#f6f8fa}
main{max-width:920px;margin:0 auto;padding:2rem 1rem;display:grid;gap:2rem;grid-template-columns:1fr}
@media(min-width:760px){main{grid-template-columns:1fr 1fr;padding-top:4rem}}
.card{background:#fff;border:1px solid #e3e8ee;border-radius:12px;padding:1.5rem;box-shadow:0 2px 6px rgba(50,50,93,.08)}
.summary{align-self:start}
a{color:#4f46e5}
a:focus-visible,button:focus-visible,input:focus-visible,summary:focus-visible{outline:3px solid #7c73ff;outline-offset:2px}
.back{display:block;width:fit-content;margin-bottom:1rem;text-decoration:none;font-weight:600}
.back:hover{text-decoration:underline}
.badge{display:inline-block;margin:0 0 .5rem;padding:.1rem .5rem;border-radius:4px;background:#ffe7b3;color:#6b3d00;font-size:.75rem;font-weight:700;letter-spacing:.04em;text-transform:uppercase}
h1{margin:.25rem 0 1rem;font-size:1.6rem;line-height:1.25}
h2{margin:0 0 1rem;font-size:1.15rem}
.items{list-style:none;margin:0;padding:0}
.items li{display:flex;justify-content:space-between;gap:1rem;padding:.75rem 0;border-bottom:1px solid #e3e8ee}
.items .desc,.items .qty{display:block;color:#5b6475;font-size:.875rem}
.total{display:flex;justify-content:space-between;margin:1rem 0 0;font-weight:700}
.total dt,.total dd{margin:0}
label,legend{display:block;margin:0 0 .25rem;padding:0;font-size:.9rem;font-weight:600;color:#3c4257}
fieldset{border:0;margin:0;padding:0}
.field{margin-bottom:1rem}
.row{display:grid;grid-template-columns:1fr 1fr;gap:.75rem}
input{width:100%;padding:.6rem .75rem;font:inherit;border:1px solid #cfd7df;border-radius:6px;background:#fff;color:inherit}
input[readonly]{background:#f6f8fa}
input[aria-invalid="true"]{border-color:#df1b41}
.field-error{margin:.25rem 0 0;color:#b3093c;font-size:.875rem}
.alert{margin:0 0 1rem;padding:.75rem 1rem;border-radius:6px;background:#fde8ec;color:#8a0a2e;border:1px solid #f5b5c3}
.notice{margin:0 0 1rem;padding:.75rem 1rem;border-radius:6px;background:#eef2ff;color:#312e81}
button{width:100%;padding:.75rem 1rem;font:inherit;font-weight:700;color:#fff;background:#4f46e5;border:0;border-radius:6px;cursor:pointer}
button:hover{background:#4338ca}
button.secondary{margin-top:.75rem;color:#1a1f36;background:#fff;border:1px solid #cfd7df}
button.secondary:hover{background:#f6f8fa}
details{margin-top:1.5rem;font-size:.875rem;color:#3c4257}
summary{cursor:pointer;font-weight:600}
table{width:100%;margin-top:.5rem;border-collapse:collapse}
th,td{text-align:left;padding:.25rem .5rem .25rem 0;border-bottom:1px solid #e3e8ee}
code{font-family:ui-monospace,SFMono-Regular,Menlo,monospace}
.fine{margin-top:1.5rem;color:#5b6475;font-size:.8rem;text-align:center}
@media(prefers-color-scheme:dark){
body{color:#e3e8ee;background:#0d1117}
.card{background:#161b22;border-color:#30363d;box-shadow:none}
a{color:#a5b4fc}
a:focus-visible,button:focus-visible,input:focus-visible,summary:focus-visible{outline-color:#a5b4fc}
.badge{background:#5c3d00;color:#ffe7b3}
.items li,th,td{border-color:#30363d}
.items .desc,.items .qty,.fine{color:#9ba6b4}
label,legend,details{color:#c9d1d9}
input{background:#0d1117;border-color:#484f58}
input[readonly]{background:#161b22}
input[aria-invalid="true"]{border-color:#ff7b9c}
.field-error{color:#ff9db4}
.alert{background:#3b0d19;color:#ffd7e0;border-color:#8a2440}
.notice{background:#1e1b4b;color:#e0e7ff}
button.secondary{color:#e3e8ee;background:#161b22;border-color:#484f58}
button.secondary:hover{background:#21262d}
}
`;

/** Content-Security-Policy for these pages: nothing but the inline stylesheet above. */
export const CHECKOUT_CSP = `default-src 'none'; style-src 'sha256-${crypto.createHash('sha256').update(STYLE).digest('base64')}'; base-uri 'none'; frame-ancestors 'none'`;

function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="robots" content="noindex">
<title>${h(title)}</title>
<style>${STYLE}</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>
`;
}

function backLink(cancelUrl: string | null): string {
  return cancelUrl ? `<a class="back" href="${h(cancelUrl)}">← Back</a>` : '';
}

function summary(view: CheckoutView, heading: string): string {
  const { session, lineItems } = view;
  if (session.mode === 'setup') {
    return `<section class="card summary" aria-labelledby="summary-heading">
${backLink(session.status === 'complete' ? null : session.cancel_url)}
<p class="badge">Test mode</p>
<h1 id="summary-heading">${h(heading)}</h1>
<p>Your card is saved for later payments. You are not charged now.</p>
</section>`;
  }
  const items = lineItems
    .map((li) => {
      const desc = li.product_description ? `<span class="desc">${h(li.product_description)}</span>` : '';
      const qty = `<span class="qty">Qty ${li.quantity}${li.quantity > 1 ? ` × ${h(formatAmount(li.unit_amount, li.currency))}` : ''}</span>`;
      return `<li><span><span class="name">${h(li.product_name)}</span>${desc}${qty}</span><span class="price">${h(formatAmount(li.amount_total, li.currency))}</span></li>`;
    })
    .join('\n');
  return `<section class="card summary" aria-labelledby="summary-heading">
${backLink(session.status === 'complete' ? null : session.cancel_url)}
<p class="badge">Test mode</p>
<h1 id="summary-heading">${h(heading)}</h1>
<ul class="items">
${items}
</ul>
<dl class="total"><dt>${session.status === 'complete' ? 'Total paid' : 'Total due'}</dt><dd>${h(formatAmount(session.amount_total, session.currency))}</dd></dl>
</section>`;
}

const FIELD_LABELS: Record<keyof CardForm, string> = {
  email: 'Email',
  cardNumber: 'Card number',
  cardExpiry: 'Expiry (MM / YY)',
  cardCvc: 'CVC',
  billingName: 'Name on card',
};

function field(
  name: keyof CardForm,
  values: Partial<CardForm>,
  errors: FieldErrors,
  attrs: string,
  options: { readonly?: boolean; autofocus?: boolean } = {},
): string {
  const error = errors[name];
  const describedBy = error ? ` aria-invalid="true" aria-describedby="${name}-error"` : '';
  const extra = `${options.readonly ? ' readonly' : ''}${options.autofocus ? ' autofocus' : ''}`;
  return `<div class="field">
<label for="${name}">${FIELD_LABELS[name]}</label>
<input id="${name}" name="${name}" value="${h(values[name] ?? '')}" required ${attrs}${describedBy}${extra}>
${error ? `<p class="field-error" id="${name}-error">${h(error)}</p>` : ''}
</div>`;
}

function testCardsTable(): string {
  const rows = Object.entries(TEST_CARDS)
    .filter(([number]) => number !== '4000002500003155')
    .map(([number, card]) => `<tr><td><code>${number.replace(/(\d{4})(?=\d)/g, '$1 ')}</code></td><td>${h(card.label)}</td></tr>`)
    .join('\n');
  return `<details>
<summary>Test cards</summary>
<p>Use any future expiry date, any 3-digit CVC and any name.</p>
<table>
<thead><tr><th scope="col">Number</th><th scope="col">Result</th></tr></thead>
<tbody>
${rows}
</tbody>
</table>
</details>`;
}

/** The card form, with the values and errors of a rejected attempt when there was one. */
export function renderPaymentForm(
  view: CheckoutView,
  state: { values?: Partial<CardForm>; errors?: FieldErrors; alert?: string } = {},
): string {
  const { session } = view;
  const total = formatAmount(session.amount_total, session.currency);
  const errors = state.errors ?? {};
  const values: Partial<CardForm> = { ...state.values, email: view.knownEmail ?? state.values?.email ?? '' };
  const firstInvalid = (['email', 'cardNumber', 'cardExpiry', 'cardCvc', 'billingName'] as const).find((f) => errors[f]);
  const focus = (name: keyof CardForm) => ({ autofocus: firstInvalid === name });
  const alert = state.alert
    ? `<div class="alert" role="alert">${h(state.alert)}</div>`
    : firstInvalid
      ? `<div class="alert" role="alert">Please correct the highlighted fields.</div>`
      : '';
  const setup = session.mode === 'setup';
  const action = setup ? 'Save card' : `Pay ${total}`;
  const body = `${summary(view, setup ? 'Save a card' : `Pay ${total}`)}
<section class="card" aria-labelledby="pay-heading">
<h2 id="pay-heading">${setup ? 'Card details' : 'Pay with card'}</h2>
${alert}
<form method="post" action="/c/pay/${encodeURIComponent(session.id)}" novalidate>
${field('email', values, errors, 'type="email" autocomplete="email"', { readonly: view.knownEmail !== null, ...focus('email') })}
<fieldset>
<legend>Card information</legend>
${field('cardNumber', values, errors, 'inputmode="numeric" autocomplete="cc-number" placeholder="1234 1234 1234 1234"', focus('cardNumber'))}
<div class="row">
${field('cardExpiry', values, errors, 'inputmode="numeric" autocomplete="cc-exp" placeholder="MM / YY"', focus('cardExpiry'))}
${field('cardCvc', values, errors, 'inputmode="numeric" autocomplete="cc-csc" placeholder="CVC"', focus('cardCvc'))}
</div>
</fieldset>
${field('billingName', values, errors, 'autocomplete="cc-name"', focus('billingName'))}
<button type="submit">${h(action)}</button>
</form>
${testCardsTable()}
<p class="fine">Stripe emulator · test mode · no real payment is made</p>
</section>`;
  return layout(`${action} · Test checkout`, body);
}

/** The 3-D Secure step of a test card that requires authentication. */
export function renderAuthentication(view: CheckoutView): string {
  const { session, paymentIntent } = view;
  const total = formatAmount(session.amount_total, session.currency);
  const last4 = paymentIntent?.pending_card?.card.last4;
  const body = `${summary(view, `Pay ${total}`)}
<section class="card" aria-labelledby="auth-heading">
<h2 id="auth-heading">Authenticate your payment</h2>
<p class="notice">Your bank asks you to confirm this payment of ${h(total)}${last4 ? ` with the card ending in ${h(last4)}` : ''}. This is a test 3D Secure page: choose the outcome.</p>
<form method="post" action="/c/pay/${encodeURIComponent(session.id)}/authenticate">
<button type="submit" name="action" value="complete" autofocus>Complete authentication</button>
<button type="submit" name="action" value="fail" class="secondary">Fail authentication</button>
</form>
</section>`;
  return layout(`Authenticate · Test checkout`, body);
}

/** Shown instead of the form once a session is complete or expired. */
export function renderClosed(view: CheckoutView): string {
  const { session } = view;
  if (session.status === 'complete' && session.mode === 'setup') {
    const next = successRedirect(session.success_url, session.id);
    const body = `${summary(view, 'Card saved')}
<section class="card" aria-labelledby="done-heading">
<h2 id="done-heading">Setup complete</h2>
<p class="notice" role="status">Your card is saved. Nothing was charged.</p>
${next ? `<p><a href="${h(next)}">Return to the merchant</a></p>` : ''}
</section>`;
    return layout('Card saved · Test checkout', body);
  }
  if (session.status === 'complete') {
    const next = successRedirect(session.success_url, session.id);
    const body = `${summary(view, 'Thanks for your payment')}
<section class="card" aria-labelledby="done-heading">
<h2 id="done-heading">Payment complete</h2>
<p class="notice" role="status">This checkout session is complete: ${h(formatAmount(session.amount_total, session.currency))} was paid. It cannot be paid again.</p>
${next ? `<p><a href="${h(next)}">Return to the merchant</a></p>` : ''}
</section>`;
    return layout('Payment complete · Test checkout', body);
  }
  const body = `${summary(view, 'This checkout session has expired')}
<section class="card" aria-labelledby="expired-heading">
<h2 id="expired-heading">Session expired</h2>
<p class="notice" role="status">This checkout session is no longer available. Go back and start the purchase again.</p>
</section>`;
  return layout('Session expired · Test checkout', body);
}

/** 404 page for an unknown session id. */
export function renderNotFound(): string {
  return layout(
    'Not found · Test checkout',
    `<section class="card" aria-labelledby="nf-heading">
<h1 id="nf-heading">Checkout session not found</h1>
<p>This payment link is not valid. Go back to the merchant and start the purchase again.</p>
</section>`,
  );
}
