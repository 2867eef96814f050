import crypto from 'node:crypto';
import Stripe from 'stripe';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import type { TestApp } from '../helpers/app.ts';
import { availableCredits, payOnCheckoutPage as payOnCheckoutPageAs, signupAgent, useStripeTestApp, WEBHOOK_SECRET } from '../helpers/stripe-app.ts';
import { BROWSER_ACCEPT, csrfFrom } from '../auth/auth-helpers.ts';

const SECRET = WEBHOOK_SECRET;
let ta: TestApp;
let emulator: StripeEmulatorServer;
let appUrl: string;
let stripe: Stripe;
useStripeTestApp((app) => ({ ta, emulator, appUrl, stripe } = app));

const signup = () => signupAgent(ta.app, 'Buyer');
const available = availableCredits;
const payOnCheckoutPage = (sessionId: string, card: string) => payOnCheckoutPageAs(emulator, sessionId, card, 'Buyer');

async function buy(agent: request.Agent, packageId = 'starter') {
  const checkout = await agent.post('/api/payments/checkout').send({ packageId }).expect(201);
  const paid = await payOnCheckoutPage(checkout.body.sessionId, '4242 4242 4242 4242').expect(303);
  return { ...checkout.body, successUrl: paid.headers.location as string } as { paymentId: string; sessionId: string; checkoutUrl: string; successUrl: string };
}

function signed(payload: string, secret = SECRET, timestamp?: number) {
  return stripe.webhooks.generateTestHeaderString({ payload, secret, ...(timestamp ? { timestamp } : {}) });
}

async function webhookEventCount() {
  return Number((await ta.t.db('stripe_webhook_events').count({ n: '*' }))[0]!.n);
}

describe('credit packs', () => {
  it('lists Starter, Professional and Enterprise with integer cents', async () => {
    const res = await request(ta.app).get('/api/credits/packages').expect(200);
    expect(res.body.packages).toEqual([
      { id: 'starter', name: 'Starter', credits: 100, bonusCredits: 0, amountCents: 500, currency: 'usd' },
      { id: 'professional', name: 'Professional', credits: 500, bonusCredits: 25, amountCents: 2000, currency: 'usd' },
      { id: 'enterprise', name: 'Enterprise', credits: 2000, bonusCredits: 150, amountCents: 6000, currency: 'usd' },
    ]);
  });
});

describe('buying through Checkout', () => {
  it('a paid Starter session gives 100 credits once: webhook and success page both fulfill', async () => {
    const { agent } = await signup();
    const { paymentId, checkoutUrl, successUrl } = await buy(agent);
    expect(checkoutUrl.startsWith(emulator.url)).toBe(true);
    expect(successUrl).toMatch(new RegExp(`^${appUrl}/checkout/success\\?session_id=cs_test_`));
    expect(await emulator.emulator.deliverDue()).toBeGreaterThanOrEqual(1);
    expect(await available(agent)).toBe(110);
    const page = await agent.get(new URL(successUrl).pathname + new URL(successUrl).search).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('your credits are here');
    expect(await available(agent)).toBe(110);
    const payment = (await agent.get(`/api/payments/${paymentId}`).expect(200)).body.payment;
    expect(payment).toMatchObject({ status: 'paid', packageId: 'starter', credits: 100, amountCents: 500, currency: 'usd', refundedCents: 0 });
    expect((await agent.get('/api/payments').expect(200)).body.payments.map((p: { id: string }) => p.id)).toEqual([paymentId]);
  });

  it('5 concurrent deliveries of the same event plus the success page give exactly one lot', async () => {
    const { agent } = await signup();
    const { paymentId, sessionId, successUrl } = await buy(agent);
    const events = await stripe.events.list({ type: 'checkout.session.completed', limit: 100 });
    const event = events.data.find((e) => (e.data.object as Stripe.Checkout.Session).id === sessionId)!;
    const payload = JSON.stringify(event);
    const results = await Promise.all([
      ...Array.from({ length: 5 }, () =>
        request(ta.app).post('/api/payments/webhook').set('Content-Type', 'application/json').set('Stripe-Signature', signed(payload)).send(payload),
      ),
      agent.get(new URL(successUrl).pathname + new URL(successUrl).search).set('Accept', 'text/html'),
    ]);
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(results.slice(0, 5).filter((r) => r.body.duplicate === false)).toHaveLength(1);
    const lots = await ta.t.db('lots').where({ transfer_id: `purchase:${paymentId}` });
    expect(lots).toHaveLength(1);
    await emulator.emulator.deliverDue(); // the emulator's own delivery is one more duplicate
    expect(await available(agent)).toBe(110);
  });

  it('replaying a checkout with the same Idempotency-Key returns the same session', async () => {
    const { agent } = await signup();
    const a = await agent.post('/api/payments/checkout').set('Idempotency-Key', 'buy-1').send({ packageId: 'starter' }).expect(201);
    const b = await agent.post('/api/payments/checkout').set('Idempotency-Key', 'buy-1').send({ packageId: 'starter' }).expect(201);
    expect(b.body).toEqual(a.body);
    await agent.post('/api/payments/checkout').set('Idempotency-Key', 'buy-1').send({ packageId: 'enterprise' }).expect(409);
  });

  it('refuses unknown packs, unknown fields and price fields in the body', async () => {
    const { agent } = await signup();
    const res = await agent.post('/api/payments/checkout').send({ packageId: 'starter', amountCents: 1 }).expect(400);
    expect(res.body.errors).toEqual([{ field: 'body.amountCents', message: 'is not an accepted field' }]);
    await agent.post('/api/payments/checkout').send({ packageId: 'platinum' }).expect(400);
    await request(ta.app).post('/api/payments/checkout').send({ packageId: 'starter' }).expect(401);
    expect(await ta.t.db('payments').whereIn('package_id', ['platinum']).count({ n: '*' })).toEqual([{ n: 0 }]);
  });

  it('a declined card shows an error, keeps the session open and adds nothing', async () => {
    const { agent } = await signup();
    const checkout = await agent.post('/api/payments/checkout').send({ packageId: 'starter' }).expect(201);
    const declined = await payOnCheckoutPage(checkout.body.sessionId, '4000 0000 0000 0002');
    expect(declined.status).toBeGreaterThanOrEqual(200);
    expect(declined.status).not.toBe(303);
    expect(declined.text).toMatch(/declined/i);
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(10);
    expect((await agent.get(`/api/payments/${checkout.body.paymentId}`).expect(200)).body.payment.status).toBe('pending');
    expect((await stripe.checkout.sessions.retrieve(checkout.body.sessionId)).status).toBe('open');
  });

  it('an expired session marks the payment expired', async () => {
    const { agent } = await signup();
    const checkout = await agent.post('/api/payments/checkout').send({ packageId: 'starter' }).expect(201);
    await stripe.checkout.sessions.expire(checkout.body.sessionId);
    await emulator.emulator.deliverDue();
    expect((await agent.get(`/api/payments/${checkout.body.paymentId}`).expect(200)).body.payment.status).toBe('expired');
    expect(await available(agent)).toBe(10);
  });

  it("another user's payment is 404", async () => {
    const { agent } = await signup();
    const { paymentId } = await buy(agent);
    const other = await signup();
    await other.agent.get(`/api/payments/${paymentId}`).expect(404);
    await other.agent.get('/api/payments/not-a-uuid').expect(400);
  });
});

describe('webhook signatures', () => {
  it('a tampered body, a wrong secret, a missing header or a 301 s old timestamp → 400 and nothing stored', async () => {
    const { agent } = await signup();
    const checkout = await agent.post('/api/payments/checkout').send({ packageId: 'starter' }).expect(201);
    await payOnCheckoutPage(checkout.body.sessionId, '4242424242424242').expect(303);
    const events = await stripe.events.list({ type: 'checkout.session.completed', limit: 100 });
    const event = events.data.find((e) => (e.data.object as Stripe.Checkout.Session).id === checkout.body.sessionId)!;
    const payload = JSON.stringify(event);
    const before = await webhookEventCount();
    const post = (body: string, header?: string) => {
      const r = request(ta.app).post('/api/payments/webhook').set('Content-Type', 'application/json');
      return (header ? r.set('Stripe-Signature', header) : r).send(body);
    };
    const tampered = payload.replace('"amount_total":500', '"amount_total":5');
    expect(tampered).not.toBe(payload);
    const cases = [
      await post(tampered, signed(payload)),
      await post(payload, signed(payload, 'whsec_wrong')),
      await post(payload),
      await post(payload, signed(payload, SECRET, Math.floor(Date.now() / 1000) - 301)),
    ];
    for (const res of cases) {
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ status: 400, code: 'invalid_signature' });
    }
    expect(await webhookEventCount()).toBe(before);
    expect((await agent.get(`/api/payments/${checkout.body.paymentId}`)).body.payment.status).toBe('pending');
    expect(await available(agent)).toBe(10);
    // The genuine delivery still works.
    await post(payload, signed(payload)).expect(200);
    expect(await available(agent)).toBe(110);
  });

  it('unknown event types are acknowledged and ignored', async () => {
    const payload = JSON.stringify({ id: `evt_${crypto.randomBytes(8).toString('hex')}`, object: 'event', type: 'customer.created', created: Math.floor(Date.now() / 1000), data: { object: {} } });
    const res = await request(ta.app).post('/api/payments/webhook').set('Content-Type', 'application/json').set('Stripe-Signature', signed(payload)).send(payload).expect(200);
    expect(res.body).toMatchObject({ received: true, outcome: 'ignored' });
  });
});

describe('refunds', () => {
  async function admin() {
    const a = await signup();
    await ta.t.db('users').where({ id: a.user.id }).update({ role: 'admin' });
    return a;
  }

  it('a partial refund claws back the refunded share of the purchase and its bonus', async () => {
    const { agent } = await signup();
    const { paymentId } = await buy(agent, 'professional'); // $20.00 for 500 + 25 bonus
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(535);
    const boss = await admin();
    await agent.post(`/api/admin/payments/${paymentId}/refunds`).send({ amountCents: 500 }).expect(403);
    const res = await boss.agent.post(`/api/admin/payments/${paymentId}/refunds`).send({ amountCents: 500 }).expect(201);
    expect(res.body.refund).toMatchObject({ amountCents: 500 });
    await emulator.emulator.deliverDue();
    // A quarter of the money back: 125 of the 500 credits and 6.25 of the 25 bonus.
    expect(await available(agent)).toBe(535 - 125 - 6.25);
    const payment = (await agent.get(`/api/payments/${paymentId}`).expect(200)).body.payment;
    expect(payment).toMatchObject({ status: 'partially_refunded', refundedCents: 500 });
    expect(payment.refunds).toHaveLength(1);
    const history = (await agent.get('/api/credits/transfers?kind=refund_clawback').expect(200)).body;
    const entries = history.transfers ?? history.items ?? history.entries;
    expect(entries.map((e: { amount: number }) => e.amount).sort()).toEqual([-125, -6.25]);
    // Refunding the rest empties what is left of both lots.
    await boss.agent.post(`/api/admin/payments/${paymentId}/refunds`).send({}).expect(201);
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(10);
    expect((await agent.get(`/api/payments/${paymentId}`)).body.payment).toMatchObject({ status: 'refunded', refundedCents: 2000 });
    await boss.agent.post(`/api/admin/payments/${paymentId}/refunds`).send({}).expect(409);
  });

  it('refunding credits already spent leaves a debt that blocks spending until the next purchase', async () => {
    const { agent, user } = await signup();
    const { paymentId } = await buy(agent);
    await emulator.emulator.deliverDue();
    await ta.deps.ledger.debit({ transferId: `spend-${user.id}`, userId: user.id, millicredits: 100_000, kind: 'usage', actor: 'test' });
    expect(await available(agent)).toBe(10);
    const boss = await admin();
    await boss.agent.post(`/api/admin/payments/${paymentId}/refunds`).send({}).expect(201);
    await emulator.emulator.deliverDue();
    const balance = (await agent.get('/api/credits/balance').expect(200)).body;
    expect(balance.available).toBe(-90); // 10 signup credits left − 100 owed
    await expect(
      ta.deps.ledger.reserve({ holdId: `blocked-${user.id}`, userId: user.id, millicredits: 1, timeoutMs: 60_000, actor: 'test' }),
    ).rejects.toMatchObject({ code: 'insufficient_credits' });
    await buy(agent);
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(10);
  });
});

describe('receipts and the admin refund form', () => {
  it('shows the buyer a receipt with its refunds, and nobody else', async () => {
    const { agent } = await signup();
    const { paymentId } = await buy(agent);
    await emulator.emulator.deliverDue();
    const account = await agent.get('/account').set('Accept', BROWSER_ACCEPT).expect(200);
    expect(account.text).toContain(`/account/payments/${paymentId}`);
    const receipt = await agent.get(`/account/payments/${paymentId}`).set('Accept', BROWSER_ACCEPT).expect(200);
    expect(receipt.text).toContain('$5.00');
    expect(receipt.text).toMatch(/data-testid="receipt-status">Paid</);
    const other = await signup();
    await other.agent.get(`/account/payments/${paymentId}`).set('Accept', BROWSER_ACCEPT).expect(404);
  });

  it('lets an admin refund part of a payment from the user page; the credits follow the webhook', async () => {
    const { agent, user } = await signup();
    const { paymentId } = await buy(agent); // $5.00 for 100 credits
    await emulator.emulator.deliverDue();
    const boss = request.agent(ta.app).set('Accept', BROWSER_ACCEPT);
    await boss.post('/api/auth/signup').send({ email: `boss-${crypto.randomBytes(4).toString('hex')}@example.test`, password: 'correct horse battery staple', name: 'Boss' }).expect(201);
    const me = (await boss.get('/api/auth/me').expect(200)).body.user;
    await ta.t.db('users').where({ id: me.id }).update({ role: 'admin' });

    const page = await boss.get(`/admin/users/${user.id}`).expect(200);
    expect(page.text).toContain(`action="/admin/payments/${paymentId}/refund"`);
    const csrf = csrfFrom(page.text);
    // Without a CSRF token the form post is refused and nothing is refunded.
    await boss.post(`/admin/payments/${paymentId}/refunds`).type('form').send({ amount: '1.00' }).expect(403);
    // A malformed amount is refused with a message, nothing refunded.
    await boss.post(`/admin/payments/${paymentId}/refunds`).type('form').send({ _csrf: csrf, amount: '1.234' }).expect(303);
    expect((await agent.get(`/api/payments/${paymentId}`)).body.payment.refunds).toEqual([]);

    const done = await boss.post(`/admin/payments/${paymentId}/refunds`).type('form').send({ _csrf: csrf, amount: '1.25' }).expect(303);
    expect(done.headers.location).toBe(`/admin/users/${user.id}#payments`);
    const after = await boss.get(`/admin/users/${user.id}`).expect(200);
    expect(after.text).toContain('Refunded $1.25');
    await emulator.emulator.deliverDue();
    // A quarter of the price back: a quarter of the 100 credits taken back.
    expect(await available(agent)).toBe(110 - 25);
    const receipt = await agent.get(`/account/payments/${paymentId}`).set('Accept', BROWSER_ACCEPT).expect(200);
    expect(receipt.text).toContain('Partly refunded');
    expect(receipt.text).toContain('$1.25');
    const audit = await ta.t.db('audit_log').where({ action: 'admin.payment_refunded', target_id: paymentId });
    expect(audit).toHaveLength(1);
  });
});

describe('honest payment states on the pages (issue 10)', () => {
  async function adminAgent() {
    const boss = request.agent(ta.app).set('Accept', BROWSER_ACCEPT);
    await boss.post('/api/auth/signup').send({ email: `boss-${crypto.randomBytes(4).toString('hex')}@example.test`, password: 'correct horse battery staple', name: 'Boss' }).expect(201);
    const me = (await boss.get('/api/auth/me').expect(200)).body.user;
    await ta.t.db('users').where({ id: me.id }).update({ role: 'admin' });
    return boss;
  }

  it('a declined, then abandoned checkout is closed by the cancel page: "Not paid", no receipt, never "awaiting payment"', async () => {
    const { agent } = await signup();
    const checkout = await agent.post('/api/payments/checkout').send({ packageId: 'starter' }).expect(201);
    expect((await payOnCheckoutPage(checkout.body.sessionId, '4000 0000 0000 0002')).text).toMatch(/declined/i);
    // While the checkout is open the purchase says so, and has no receipt.
    const open = await agent.get('/account').set('Accept', BROWSER_ACCEPT).expect(200);
    expect(open.text).toContain('Not paid yet');
    expect(open.text).not.toContain(`/account/payments/${checkout.body.paymentId}`);
    await agent.get(`/account/payments/${checkout.body.paymentId}`).set('Accept', BROWSER_ACCEPT).expect(404);

    // The buyer goes back (the emulator's "Back" link is the cancel URL).
    const session = await stripe.checkout.sessions.retrieve(checkout.body.sessionId);
    const cancel = await agent.get(new URL(session.cancel_url!).pathname + new URL(session.cancel_url!).search).set('Accept', BROWSER_ACCEPT).expect(200);
    expect(cancel.text).toContain('Nothing was charged');
    expect((await stripe.checkout.sessions.retrieve(checkout.body.sessionId)).status).toBe('expired');
    expect((await agent.get(`/api/payments/${checkout.body.paymentId}`).expect(200)).body.payment.status).toBe('expired');
    await emulator.emulator.deliverDue(); // checkout.session.expired finds it expired already
    const account = await agent.get('/account').set('Accept', BROWSER_ACCEPT).expect(200);
    expect(account.text).toContain('Not paid (checkout ended)');
    expect(account.text).not.toMatch(/Awaiting payment|Not paid yet/);
    expect(account.text).not.toContain(`/account/payments/${checkout.body.paymentId}`);
    const receipt = await agent.get(`/account/payments/${checkout.body.paymentId}`).set('Accept', BROWSER_ACCEPT).expect(404);
    expect(receipt.text).not.toContain('Paid through Stripe Checkout');
    expect(await available(agent)).toBe(10);
  });

  it('the cancel page of a paid checkout changes nothing', async () => {
    const { agent } = await signup();
    const { paymentId } = await buy(agent);
    await emulator.emulator.deliverDue();
    const cancel = await agent.get(`/checkout/cancel?payment_id=${paymentId}`).set('Accept', BROWSER_ACCEPT).expect(200);
    expect(cancel.text).toContain('was paid after all');
    expect((await agent.get(`/api/payments/${paymentId}`).expect(200)).body.payment.status).toBe('paid');
  });

  it('an admin refund is confirmed first (the whole amount said so), then shows "Refund pending" with no form until the webhook', async () => {
    const { agent, user } = await signup();
    const { paymentId } = await buy(agent);
    await emulator.emulator.deliverDue();
    const boss = await adminAgent();

    // Empty amount: the confirmation names the whole remaining amount; nothing is refunded yet.
    const whole = await boss.get(`/admin/payments/${paymentId}/refund?amount=`).expect(200);
    expect(whole.text).toContain('Refund $5.00?');
    expect(whole.text).toContain('this refunds the whole remaining amount');
    expect(whole.text).toContain('Buyer</dt><dd>Buyer (');
    expect(whole.text).toContain('about 100 credits');
    expect((await agent.get(`/api/payments/${paymentId}`)).body.payment.refunds).toEqual([]);

    // A partial amount, confirmed (twice, as a double click would: one refund).
    const part = await boss.get(`/admin/payments/${paymentId}/refund?amount=2`).expect(200);
    expect(part.text).toContain('Refund $2.00?');
    expect(part.text).toContain('about 40 credits');
    const form = { _csrf: csrfFrom(part.text), amount: /name="amount" value="([^"]+)"/.exec(part.text)![1], idempotencyKey: /name="idempotencyKey" value="([^"]+)"/.exec(part.text)![1] };
    await boss.post(`/admin/payments/${paymentId}/refunds`).type('form').send(form).expect(303);
    await boss.post(`/admin/payments/${paymentId}/refunds`).type('form').send(form).expect(303);
    expect((await agent.get(`/api/payments/${paymentId}`)).body.payment.refunds).toHaveLength(1);

    // Before Stripe confirms: pending, no live refund form, no stale "Paid".
    const pending = await boss.get(`/admin/users/${user.id}`).expect(200);
    expect(pending.text).toMatch(/data-testid="admin-payment-status"><strong>Refund pending<\/strong>/);
    expect(pending.text).not.toContain(`action="/admin/payments/${paymentId}/refund"`);
    expect((await boss.get(`/admin/payments/${paymentId}/refund?amount=1`).expect(303)).headers.location).toBe(`/admin/users/${user.id}#payments`);

    await emulator.emulator.deliverDue();
    const settled = await boss.get(`/admin/users/${user.id}`).expect(200);
    expect(settled.text).toMatch(/data-testid="admin-payment-status">Partly refunded</);
    expect(settled.text).toContain(`action="/admin/payments/${paymentId}/refund"`);
    expect(await available(agent)).toBe(110 - 40);
  });

  it('refuses a bad amount on the confirmation step with the reason, refunding nothing', async () => {
    const { agent, user } = await signup();
    const { paymentId } = await buy(agent);
    await emulator.emulator.deliverDue();
    const boss = await adminAgent();
    for (const amount of ['1.234', '6', 'abc']) {
      const res = await boss.get(`/admin/payments/${paymentId}/refund?amount=${amount}`).expect(303);
      expect(res.headers.location).toBe(`/admin/users/${user.id}#payments`);
    }
    expect((await boss.get(`/admin/users/${user.id}`).expect(200)).text).toContain('Refund not made: “abc” must be an amount like 5 or 5.00.');
    expect((await agent.get(`/api/payments/${paymentId}`)).body.payment.refunds).toEqual([]);
  });
});
