import type Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import type { StripeEmulatorServer } from '../src/stripe-emulator.ts';
import type { TestDatabase } from '../../../test/helpers/db.ts';
import { useEmulatorServer } from './emulator-server.ts';

let t: TestDatabase;
let server: StripeEmulatorServer;
let stripe: Stripe;

useEmulatorServer('sk_test_page', (env) => ({ t, server, stripe } = env));

const SUCCESS = 'http://localhost:3000/credits/success?session_id={CHECKOUT_SESSION_ID}';
const CANCEL = 'http://localhost:3000/pricing';

function createSession(overrides: Partial<Stripe.Checkout.SessionCreateParams> = {}) {
  return stripe.checkout.sessions.create({
    mode: 'payment',
    line_items: [{ price_data: { currency: 'usd', unit_amount: 2000, product_data: { name: '200 credits', description: 'Best value' } }, quantity: 1 }],
    success_url: SUCCESS,
    cancel_url: CANCEL,
    payment_intent_data: { metadata: { paymentId: 'pay_42' } },
    ...overrides,
  });
}

const card = (number: string, extra: Record<string, string> = {}) => ({
  email: 'buyer@example.com',
  cardNumber: number,
  cardExpiry: '12 / 34',
  cardCvc: '123',
  billingName: 'Ada Lovelace',
  ...extra,
});

function page(id: string): Promise<Response> {
  return fetch(`${server.url}/c/pay/${id}`);
}

function submit(id: string, fields: Record<string, string>, path = ''): Promise<Response> {
  return fetch(`${server.url}/c/pay/${id}${path}`, { method: 'POST', body: new URLSearchParams(fields), redirect: 'manual' });
}

async function eventTypesFor(objectIds: string[]): Promise<string[]> {
  const events = await stripe.events.list({ limit: 100 });
  return events.data
    .filter((e) => objectIds.includes((e.data.object as { id: string }).id))
    .reverse()
    .map((e) => e.type);
}

describe('the hosted checkout page', () => {
  it('shows the line items, total and a labelled card form with one h1 and a Back link', async () => {
    const s = await createSession();
    const res = await page(s.id);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toMatch(/default-src 'none'/);
    const html = await res.text();
    expect(html.match(/<h1[\s>]/g)).toHaveLength(1);
    expect(html).toContain('200 credits');
    expect(html).toContain('Best value');
    expect(html).toContain('$20.00');
    expect(html).toContain(`<a class="back" href="${CANCEL}">← Back</a>`);
    const inputs = [...html.matchAll(/<input id="([^"]+)"/g)].map((m) => m[1]);
    expect(inputs).toEqual(['email', 'cardNumber', 'cardExpiry', 'cardCvc', 'billingName']);
    for (const id of inputs) expect(html).toContain(`<label for="${id}">`);
    expect(html).toMatch(/<button type="submit">Pay \$20\.00<\/button>/);
    expect(html).not.toMatch(/<script|https:\/\/(?!stripe\.com\/docs)/); // self-contained
  });

  it('escapes what the merchant sent', async () => {
    const s = await createSession({
      line_items: [{ price_data: { currency: 'usd', unit_amount: 500, product_data: { name: '<script>alert(1)</script>' } }, quantity: 1 }],
    });
    const html = await (await page(s.id)).text();
    expect(html).not.toContain('<script>alert(1)</script>');
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
  });

  it('404s an unknown session', async () => {
    const res = await page('cs_test_unknown');
    expect(res.status).toBe(404);
    expect(await res.text()).toContain('Checkout session not found');
  });
});

describe('paying with test cards', () => {
  it('4242 4242 4242 4242 pays: 303 to success_url with the id, session complete, payment intent and charge succeeded', async () => {
    const s = await createSession();
    const res = await submit(s.id, card('4242 4242 4242 4242'));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`http://localhost:3000/credits/success?session_id=${s.id}`);

    const paid = await stripe.checkout.sessions.retrieve(s.id, { expand: ['payment_intent.latest_charge'] });
    expect(paid).toMatchObject({
      status: 'complete',
      payment_status: 'paid',
      url: null,
      customer_details: { email: 'buyer@example.com', name: 'Ada Lovelace' },
    });
    const pi = paid.payment_intent as Stripe.PaymentIntent;
    expect(pi).toMatchObject({ object: 'payment_intent', status: 'succeeded', amount: 2000, amount_received: 2000, currency: 'usd', metadata: { paymentId: 'pay_42' } });
    expect(pi.id).toMatch(/^pi_/);
    const charge = pi.latest_charge as Stripe.Charge;
    expect(charge).toMatchObject({
      object: 'charge',
      paid: true,
      status: 'succeeded',
      amount: 2000,
      amount_refunded: 0,
      refunded: false,
      captured: true,
      payment_intent: pi.id,
      billing_details: { name: 'Ada Lovelace', email: 'buyer@example.com' },
      payment_method_details: { type: 'card', card: { brand: 'visa', last4: '4242', exp_month: 12, exp_year: 2034 } },
    });
    expect(await stripe.charges.retrieve(charge.id)).toMatchObject({ id: charge.id, paid: true });

    expect(await eventTypesFor([s.id, pi.id, charge.id])).toEqual([
      'payment_intent.created',
      'charge.succeeded',
      'payment_intent.succeeded',
      'checkout.session.completed',
    ]);
    const sessions = await stripe.checkout.sessions.list({ payment_intent: pi.id });
    expect(sessions.data.map((x) => x.id)).toEqual([s.id]);
  });

  it('never stores the card number or CVC', async () => {
    const rows = await Promise.all(
      ['stripe_emulator.charges', 'stripe_emulator.payment_intents', 'stripe_emulator.events'].map((table) => t.db(table).select('*')),
    );
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain('4242424242424242');
    expect(dump).not.toContain('4242 4242 4242 4242');
  });

  it('a completed session shows a message instead of the form, and a second submit does not pay twice', async () => {
    const s = await createSession();
    expect((await submit(s.id, card('4242424242424242'))).status).toBe(303);
    const html = await (await page(s.id)).text();
    expect(html).toContain('This checkout session is complete');
    expect(html).not.toContain('<form');
    const again = await submit(s.id, card('4242424242424242'));
    expect(again.status).toBe(303);
    expect(again.headers.get('location')).toBe(`http://localhost:3000/credits/success?session_id=${s.id}`);
    const charges = await t.db('stripe_emulator.charges').whereIn('payment_intent_id', t.db('stripe_emulator.checkout_sessions').select('payment_intent_id').where({ id: s.id }));
    expect(charges).toHaveLength(1);
  });

  it('4000 0000 0000 0002 is declined: the error is shown, the session stays open, another card then pays', async () => {
    const s = await createSession();
    const res = await submit(s.id, card('4000 0000 0000 0002'));
    expect(res.status).toBe(402);
    const html = await res.text();
    expect(html).toMatch(/<div class="alert" role="alert">Your card was declined\.<\/div>/);
    expect(html).toContain('<form');

    const open = await stripe.checkout.sessions.retrieve(s.id, { expand: ['payment_intent'] });
    expect(open).toMatchObject({ status: 'open', payment_status: 'unpaid' });
    const pi = open.payment_intent as Stripe.PaymentIntent;
    expect(pi.status).toBe('requires_payment_method');
    expect(pi.last_payment_error).toMatchObject({ type: 'card_error', code: 'card_declined', decline_code: 'generic_decline' });
    // Stripe's shape: the payment method's card carries the fingerprint, the same as the charge's.
    const fingerprint = pi.last_payment_error?.payment_method?.card?.fingerprint;
    expect(fingerprint).toMatch(/^[\w-]{16}$/);
    const failedCharge = await stripe.charges.retrieve(pi.latest_charge as string);
    expect(failedCharge).toMatchObject({ status: 'failed', paid: false, failure_code: 'card_declined' });
    expect(failedCharge.payment_method_details?.card?.fingerprint).toBe(fingerprint);

    expect((await submit(s.id, card('4242424242424242'))).status).toBe(303);
    const paid = await stripe.checkout.sessions.retrieve(s.id);
    expect(paid).toMatchObject({ status: 'complete', payment_status: 'paid', payment_intent: pi.id });
    expect(await eventTypesFor([s.id, pi.id, failedCharge.id])).toEqual([
      'payment_intent.created',
      'charge.failed',
      'payment_intent.payment_failed',
      'payment_intent.succeeded',
      'checkout.session.completed',
    ]);
  });

  it('4000 0000 0000 9995 is declined for insufficient funds', async () => {
    const s = await createSession();
    const res = await submit(s.id, card('4000000000009995'));
    expect(res.status).toBe(402);
    expect(await res.text()).toContain('Your card has insufficient funds.');
    const pi = (await stripe.checkout.sessions.retrieve(s.id, { expand: ['payment_intent'] })).payment_intent as Stripe.PaymentIntent;
    expect(pi.last_payment_error?.decline_code).toBe('insufficient_funds');
    expect((await stripe.checkout.sessions.retrieve(s.id)).status).toBe('open');
  });

  it('4000 0027 6000 3184 asks for authentication; failing it shows an error and keeps the session open; completing it pays', async () => {
    const s = await createSession();
    const first = await submit(s.id, card('4000 0027 6000 3184'));
    expect(first.status).toBe(303);
    expect(first.headers.get('location')).toBe(`/c/pay/${s.id}`);
    const auth = await (await page(s.id)).text();
    expect(auth.match(/<h1[\s>]/g)).toHaveLength(1);
    expect(auth).toMatch(/<button type="submit" name="action" value="complete" autofocus>Complete authentication<\/button>/);
    expect(auth).toMatch(/<button type="submit" name="action" value="fail" class="secondary">Fail authentication<\/button>/);
    let pi = (await stripe.checkout.sessions.retrieve(s.id, { expand: ['payment_intent'] })).payment_intent as Stripe.PaymentIntent;
    expect(pi.status).toBe('requires_action');

    const failed = await submit(s.id, { action: 'fail' }, '/authenticate');
    expect(failed.status).toBe(402);
    expect(await failed.text()).toContain('We are unable to authenticate your payment method.');
    pi = await stripe.paymentIntents.retrieve(pi.id);
    expect(pi).toMatchObject({ status: 'requires_payment_method', last_payment_error: { code: 'payment_intent_authentication_failure' } });
    expect((await stripe.checkout.sessions.retrieve(s.id)).status).toBe('open');

    expect((await submit(s.id, card('4000002760003184'))).status).toBe(303);
    const done = await submit(s.id, { action: 'complete' }, '/authenticate');
    expect(done.status).toBe(303);
    expect(done.headers.get('location')).toBe(`http://localhost:3000/credits/success?session_id=${s.id}`);
    pi = await stripe.paymentIntents.retrieve(pi.id);
    expect(pi.status).toBe('succeeded');
    expect((await stripe.checkout.sessions.retrieve(s.id)).status).toBe('complete');
  });

  it('shows inline errors for invalid fields and keeps what was typed', async () => {
    const s = await createSession();
    const res = await submit(s.id, card('4242 4242 4242 4241', { cardExpiry: '01 / 20', cardCvc: '1', billingName: '' }));
    expect(res.status).toBe(400);
    const html = await res.text();
    expect(html).toContain('Your card number is invalid.');
    expect(html).toContain('Your card&#39;s expiration year is in the past.');
    expect(html).toContain('Your card&#39;s security code is incomplete.');
    expect(html).toContain('Enter the name on your card.');
    expect(html).toMatch(/id="cardNumber"[^>]*value="4242 4242 4242 4241"[^>]*aria-invalid="true" aria-describedby="cardNumber-error"[^>]*autofocus/);
    expect((await stripe.checkout.sessions.retrieve(s.id)).payment_intent).toBeNull();
  });

  it('requires an email unless the session has one, which it shows read-only', async () => {
    const s = await createSession();
    const res = await submit(s.id, card('4242424242424242', { email: '' }));
    expect(res.status).toBe(400);
    expect(await res.text()).toContain('Your email is incomplete.');

    const withEmail = await createSession({ customer_email: 'known@example.com' });
    const html = await (await page(withEmail.id)).text();
    expect(html).toMatch(/id="email"[^>]*value="known@example\.com"[^>]*readonly/);
    expect((await submit(withEmail.id, card('4242424242424242', { email: '' }))).status).toBe(303);
    expect((await stripe.checkout.sessions.retrieve(withEmail.id)).customer_details?.email).toBe('known@example.com');
  });

  it('an expired session shows a clear message instead of the form and cannot be paid', async () => {
    const s = await createSession();
    await stripe.checkout.sessions.expire(s.id);
    const html = await (await page(s.id)).text();
    expect(html).toContain('This checkout session has expired');
    expect(html).not.toContain('<form');
    expect(html).toContain(`href="${CANCEL}"`);
    const res = await submit(s.id, card('4242424242424242'));
    expect(res.status).toBe(303);
    expect(res.headers.get('location')).toBe(`/c/pay/${s.id}`);
    expect((await stripe.checkout.sessions.retrieve(s.id)).status).toBe('expired');
  });

  it('a session without success_url shows the completion page after paying', async () => {
    const s = await createSession({ success_url: undefined });
    const res = await submit(s.id, card('4242424242424242'));
    expect(res.headers.get('location')).toBe(`/c/pay/${s.id}`);
    expect(await (await page(s.id)).text()).toContain('Payment complete');
  });
});
