import crypto from 'node:crypto';
import type Stripe from 'stripe';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLedger } from '../../src/ledger/ledger-service.ts';
import { createLogger } from '../../src/logger.ts';
import { createAutoRecharge, type AutoRecharge, type RechargeNotice } from '../../src/recharge/auto-recharge-service.ts';
import { booksViolations } from '../helpers/factories.ts';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import type { TestApp } from '../helpers/app.ts';
import { startStripeTestApp, type StripeTestApp } from '../helpers/stripe-app.ts';

// Auto-recharge against the Stripe emulator, its webhooks delivered to the app.
const C = 1000;
let app: StripeTestApp;
let ta: TestApp;
let emulator: StripeEmulatorServer;
let stripe: Stripe;
let recharge: AutoRecharge;
const notices: Array<{ userId: string; notice: RechargeNotice }> = [];
let now = new Date('2026-11-30T10:00:00Z');

beforeAll(async () => {
  app = await startStripeTestApp();
  ({ ta, emulator, stripe } = app);
  recharge = createAutoRecharge({
    db: ta.t.db,
    ledger: ta.deps.ledger,
    stripe,
    payments: ta.deps.payments,
    notifier: { notify: async (userId, notice) => void notices.push({ userId, notice }) },
    logger: createLogger('silent', { pretty: false }),
    clock: () => now,
  });
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => {
  await app.close();
});

/** A signed-up user (10 credits) with auto-recharge on the test card `number`, threshold 20 credits, the Starter pack. */
async function userWithCard(number: string, options: { maxPerDay?: number; monthlyCeilingCents?: number } = {}) {
  const agent = request.agent(ta.app);
  const email = `recharge-${crypto.randomBytes(4).toString('hex')}@example.test`;
  const res = await agent.post('/api/auth/signup').send({ email, password: 'correct horse battery staple', name: 'Rita' }).expect(201);
  const user = res.body.user as { id: string; email: string; name: string };
  const pm = await stripe.paymentMethods.create({ type: 'card', card: { number, exp_month: 12, exp_year: 2034, cvc: '123' } });
  await recharge.enable(user, { paymentMethodId: pm.id, thresholdMillicredits: 20 * C, packageId: 'starter', ...options });
  return { agent, user };
}

/** The ledger without the after-spend check, for spends these tests check by hand (with their own clock and notices). */
const plainLedger = () => createLedger(ta.t.db);
const available = async (agent: request.Agent) => (await agent.get('/api/credits/balance').expect(200)).body.available as number;
const rows = (userId: string) => ta.t.db('auto_recharges').where({ user_id: userId }).orderBy('created_at');
const purchaseLots = (userId: string) =>
  ta.t.db('lots').join('accounts', 'accounts.id', 'lots.account_id').where({ 'accounts.user_id': userId, 'lots.source': 'purchase' }).select('lots.amount');
const noticesOf = (userId: string) => notices.filter((n) => n.userId === userId).map((n) => n.notice.kind);

describe('auto-recharge', () => {
  it('when 50 spends below the threshold check at once, exactly one recharge starts and one Starter lot arrives, once', async () => {
    const { agent, user } = await userWithCard('4242424242424242');
    const outcomes = await Promise.all(Array.from({ length: 50 }, () => recharge.afterSpend(user.id)));
    expect(outcomes.filter((o) => o === 'started')).toHaveLength(1);
    expect(outcomes.filter((o) => o !== 'started').every((o) => o === 'in_flight')).toBe(true);
    expect(await available(agent)).toBe(10); // credits wait for payment_intent.succeeded
    await emulator.emulator.deliverDue();
    await emulator.emulator.deliverDue(); // a second delivery round changes nothing
    expect(await available(agent)).toBe(110);
    expect(await purchaseLots(user.id)).toEqual([{ amount: 100 * C }]);
    expect((await rows(user.id)).map((r) => r.status)).toEqual(['succeeded']);
    expect(await recharge.afterSpend(user.id)).toBe('above_threshold');
  });

  it('50 concurrent spends through the app\'s ledger crossing the threshold → one recharge, one lot (the after-spend check)', async () => {
    const { agent, user } = await userWithCard('4242424242424242');
    // 60 credits: 50 one-credit spends cross the 20-credit threshold at the 41st.
    await ta.deps.ledger.grant({ transferId: `top-up:${user.id}`, userId: user.id, millicredits: 50 * C, kind: 'adjustment', actor: 'test' });
    await ta.deps.autoRecharge.settled();
    expect(await rows(user.id)).toEqual([]);
    await Promise.all(
      Array.from({ length: 50 }, (_, i) => ta.deps.ledger.debit({ transferId: `burst:${user.id}:${i}`, userId: user.id, millicredits: 1 * C, kind: 'usage', actor: 'test' })),
    );
    await ta.deps.autoRecharge.settled();
    expect((await rows(user.id)).map((r) => r.status)).toEqual(['pending']);
    await emulator.emulator.deliverDue();
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(110);
    expect(await purchaseLots(user.id)).toEqual([{ amount: 100 * C }]);
    expect((await rows(user.id)).map((r) => r.status)).toEqual(['succeeded']);
  });

  it('a job\'s hold settled by the task worker (post) starts the recharge; so does the sweep for a spend no check saw', async () => {
    const { agent, user } = await userWithCard('4242424242424242');
    await ta.deps.ledger.grant({ transferId: `top-up:${user.id}`, userId: user.id, millicredits: 20 * C, kind: 'adjustment', actor: 'test' });
    // A job's hold taken where no check ran (e.g. before auto-recharge was on): 30 → 15 available.
    await plainLedger().reserve({ holdId: `job:${user.id}`, userId: user.id, millicredits: 15 * C, timeoutMs: 60_000, actor: 'test', reason: 'job' });
    expect(await available(agent)).toBe(15);
    expect(await rows(user.id)).toEqual([]);
    // The task worker settles with the services' ledger (createWorker(services) → services.ledger).
    await ta.deps.ledger.post({ holdId: `job:${user.id}`, millicredits: 15 * C, actor: 'worker' });
    await ta.deps.autoRecharge.settled();
    expect((await rows(user.id)).map((r) => r.status)).toEqual(['pending']);
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(115);

    // A spend made by a process without the check (a separate worker): the sweep starts one recharge, once.
    const other = await userWithCard('4242424242424242');
    await plainLedger().debit({ transferId: `elsewhere:${other.user.id}`, userId: other.user.id, millicredits: 1 * C, kind: 'usage', actor: 'worker' });
    expect(await rows(other.user.id)).toEqual([]);
    expect(await ta.deps.autoRecharge.sweep()).toBeGreaterThanOrEqual(1);
    expect(await ta.deps.autoRecharge.sweep()).toBe(0);
    expect((await rows(other.user.id)).map((r) => r.status)).toEqual(['pending']);
    await emulator.emulator.deliverDue();
    expect(await purchaseLots(other.user.id)).toEqual([{ amount: 100 * C }]);
  });

  it('a declined card (9995) is recorded and notified; three in a row turn auto-recharge off', async () => {
    const { user } = await userWithCard('4000000000009995');
    expect(await recharge.afterSpend(user.id)).toBe('failed');
    expect(await recharge.afterSpend(user.id)).toBe('failed');
    expect(await recharge.afterSpend(user.id)).toBe('failed');
    expect(await recharge.afterSpend(user.id)).toBe('off');
    const r = await rows(user.id);
    expect(r.map((x) => [x.status, x.failure_code])).toEqual([
      ['failed', 'insufficient_funds'],
      ['failed', 'insufficient_funds'],
      ['failed', 'insufficient_funds'],
    ]);
    const settings = await ta.t.db('auto_recharge_settings').where({ user_id: user.id }).first();
    expect(settings).toMatchObject({ enabled: false, disabled_reason: 'failures', consecutive_failures: 3 });
    expect(noticesOf(user.id)).toEqual(['failed', 'failed', 'failed', 'disabled']);
    await emulator.emulator.deliverDue();
    expect(await purchaseLots(user.id)).toEqual([]);
  });

  it('stops at the daily count and notifies once; a new day allows again', async () => {
    const { agent, user } = await userWithCard('4242424242424242', { maxPerDay: 1 });
    expect(await recharge.afterSpend(user.id)).toBe('started');
    await emulator.emulator.deliverDue();
    // Spend back below the threshold.
    await plainLedger().debit({ transferId: `spend:${user.id}`, userId: user.id, millicredits: 100 * C, kind: 'usage', actor: 'test' });
    expect(await available(agent)).toBe(10);
    expect(await recharge.afterSpend(user.id)).toBe('daily_limit');
    expect(await recharge.afterSpend(user.id)).toBe('daily_limit');
    expect(noticesOf(user.id)).toEqual(['daily_limit']);
    now = new Date('2026-12-01T10:00:00Z');
    try {
      // December is a new month too: the ceiling (5 packs) has room.
      await ta.t.db('auto_recharges').where({ user_id: user.id }).update({ created_at: new Date('2026-11-30T10:00:00Z') });
      expect(await recharge.afterSpend(user.id)).toBe('started');
    } finally {
      now = new Date('2026-11-30T10:00:00Z');
    }
  });

  it('stops at the monthly ceiling and notifies once', async () => {
    const { user } = await userWithCard('4242424242424242', { monthlyCeilingCents: 500 });
    expect(await recharge.afterSpend(user.id)).toBe('started');
    await emulator.emulator.deliverDue();
    await plainLedger().debit({ transferId: `spend:${user.id}`, userId: user.id, millicredits: 100 * C, kind: 'usage', actor: 'test' });
    expect(await recharge.afterSpend(user.id)).toBe('monthly_ceiling');
    expect(await recharge.afterSpend(user.id)).toBe('monthly_ceiling');
    expect(noticesOf(user.id)).toEqual(['monthly_ceiling']);
  });

  it('a card that needs authentication (3184) sends a Checkout link, grants nothing, and does not retry by itself', async () => {
    const { agent, user } = await userWithCard('4000002760003184');
    expect(await recharge.afterSpend(user.id)).toBe('authentication_required');
    expect(await recharge.afterSpend(user.id)).toBe('off');
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(10);
    expect(await purchaseLots(user.id)).toEqual([]);
    expect((await rows(user.id)).map((r) => r.status)).toEqual(['requires_action']);
    const sent = notices.find((n) => n.userId === user.id && n.notice.kind === 'authentication_required')!.notice as Extract<RechargeNotice, { kind: 'authentication_required' }>;
    expect(sent.checkoutUrl).toMatch(/\/c\/pay\/cs_test_/);
  });

  it('through the real notification pipeline, the authentication-required card emails a Checkout link; paying it grants the pack once, not before', async () => {
    const { agent, user } = await userWithCard('4000002760003184');
    expect(await ta.deps.autoRecharge.afterSpend(user.id)).toBe('authentication_required');
    const [mail] = await ta.t.db('email_outbox').where({ user_id: user.id, type: 'auto_recharge' }).select('subject', 'text_body');
    expect(mail.subject).toBe('Confirm your auto-recharge payment');
    const link = /(http\S+\/c\/pay\/cs_test_\w+)/.exec(mail.text_body)![1]!;
    await emulator.emulator.deliverDue();
    expect(await purchaseLots(user.id)).toEqual([]);
    expect(await available(agent)).toBe(10);
    // The user finishes the payment on-session in Checkout (with a card that needs no step).
    const sessionId = /cs_test_\w+/.exec(link)![0];
    await request(emulator.emulator.app)
      .post(`/c/pay/${sessionId}`)
      .type('form')
      .send({ email: user.email, cardNumber: '4242 4242 4242 4242', cardExpiry: '12 / 34', cardCvc: '123', billingName: 'Rita' })
      .expect(303);
    await emulator.emulator.deliverDue();
    await emulator.emulator.deliverDue();
    expect(await purchaseLots(user.id)).toEqual([{ amount: 100 * C }]);
    expect(await available(agent)).toBe(110);
  });

  it('a refund of a recharge claws back like any purchase; deleting the card turns auto-recharge off', async () => {
    const { agent, user } = await userWithCard('4242424242424242');
    await recharge.afterSpend(user.id);
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(110);
    const [r] = await rows(user.id);
    await stripe.refunds.create({ payment_intent: r.payment_intent_id });
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(10);
    await recharge.removeCard(user.id);
    expect(await ta.t.db('auto_recharge_settings').where({ user_id: user.id }).first()).toMatchObject({ enabled: false, payment_method_id: null, disabled_reason: 'card_removed' });
    expect(await recharge.afterSpend(user.id)).toBe('off');
  });

  it('a spend reports in its own round trip whether auto-recharge watches it: on, the check starts a recharge; off, nothing is checked', async () => {
    const { user } = await userWithCard('4242424242424242');
    const open = await ta.deps.ledger.openDebit({ transferId: `watched:${user.id}`, userId: user.id, millicredits: 1 * C, kind: 'usage', actor: 'test' });
    expect(await open.commit()).toEqual({ lowBalance: false, autoRecharge: true });
    await ta.deps.autoRecharge.settled();
    expect((await rows(user.id)).map((r) => r.status)).toEqual(['pending']);
    await emulator.emulator.deliverDue();
    await recharge.turnOff(user.id);
    const after = await ta.deps.ledger.debit({ transferId: `unwatched:${user.id}`, userId: user.id, millicredits: 100 * C, kind: 'usage', actor: 'test' });
    expect(after.watch).toEqual({ lowBalance: true, autoRecharge: false }); // the recharge was a purchase: it set a baseline
    await ta.deps.autoRecharge.settled();
    expect(await rows(user.id)).toHaveLength(1);
  });

  it('a customer deleted at Stripe (its cards go with it) turns auto-recharge off as a removed card and says so, instead of failing the next recharge', async () => {
    const { agent, user } = await userWithCard('4242424242424242');
    const { customer_id: customer } = (await ta.t.db('stripe_customers').where({ user_id: user.id }).first()) as { customer_id: string };
    await stripe.customers.del(customer);
    await emulator.emulator.deliverDue();
    expect(await ta.t.db('auto_recharge_settings').where({ user_id: user.id }).first()).toMatchObject({
      enabled: false,
      payment_method_id: null,
      card_last4: null,
      disabled_reason: 'card_removed',
      consecutive_failures: 0,
    });
    // Both features handled the one event: the card is dropped, the customer id forgotten.
    const { rows: events } = await ta.t.db.raw(`SELECT outcome FROM stripe_webhook_events WHERE type = 'customer.deleted' AND outcome LIKE 'auto_recharge_card_removed%'`);
    expect(events.map((e: { outcome: string }) => e.outcome)).toContain('auto_recharge_card_removed + customer_forgotten');
    expect(await ta.t.db('stripe_customers').where({ user_id: user.id }).first()).toBeUndefined();
    expect(await recharge.afterSpend(user.id)).toBe('off');
    expect(await rows(user.id)).toEqual([]);
    const inbox = (await agent.get('/api/notifications').expect(200)).body.notifications as Array<{ title: string; body: string }>;
    expect(inbox.map((n) => [n.title, n.body])).toContainEqual(['Auto-recharge is off', 'Your saved card was deleted, so auto-recharge is off.']);
  });
});

describe('GET/PUT /api/credits/auto-recharge and the settings page', () => {
  it('saves a card and settings, shows the history and next allowed recharge, and deleting the card turns it off', async () => {
    const agent = request.agent(ta.app);
    const email = `recharge-api-${crypto.randomBytes(4).toString('hex')}@example.test`;
    await agent.post('/api/auth/signup').send({ email, password: 'correct horse battery staple', name: 'Api' }).expect(201);
    expect((await agent.get('/api/credits/auto-recharge').expect(200)).body).toMatchObject({ enabled: false, card: null, recharges: [] });
    const bad = await agent.put('/api/credits/auto-recharge').send({ paymentMethodId: 'card-4242', threshold: -1, packageId: 'starter' }).expect(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['body.paymentMethodId', 'body.threshold']);
    const pm = await stripe.paymentMethods.create({ type: 'card', card: { number: '4242424242424242', exp_month: 12, exp_year: 2034 } });
    const on = await agent.put('/api/credits/auto-recharge').send({ paymentMethodId: pm.id, threshold: 20, packageId: 'starter' }).expect(200);
    expect(on.body).toMatchObject({ enabled: true, card: { brand: 'visa', last4: '4242' }, threshold: 20, maxPerDay: 3, monthlyCeilingCents: 2500 });
    expect(on.body.nextAllowedAt).not.toBeNull();
    const page = await agent.get('/account/settings/credits').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain("Saved card: <strong>Visa ending 4242</strong>");
    expect(page.text).toContain('$25.00');
    const off = await agent.delete('/api/credits/auto-recharge/card').expect(200);
    expect(off.body).toMatchObject({ enabled: false, card: null, disabledReason: 'card_removed' });
  });
});

describe('saving a card from the pages (Checkout setup mode, or a pack bought with "save my card")', () => {
  const pay = (sessionId: string, card: string) =>
    request(emulator.emulator.app)
      .post(`/c/pay/${sessionId}`)
      .type('form')
      .send({ email: 'saver@example.test', cardNumber: card, cardExpiry: '12 / 34', cardCvc: '123', billingName: 'Saver' });
  const page = (agent: request.Agent, url: string) => agent.get(url).set('Accept', 'text/html').expect(200);
  const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)![1]!;
  const sessionOf = (url: string) => /\/c\/pay\/(cs_test_\w+)/.exec(url)![1]!;

  it('"Save a card" → setup Checkout → brand and last 4 shown; turn on with the form; a spend recharges; /account shows the history; "Remove card" turns it off', async () => {
    const agent = request.agent(ta.app);
    const email = `saver-${crypto.randomBytes(4).toString('hex')}@example.test`;
    const signup = await agent.post('/api/auth/signup').send({ email, password: 'correct horse battery staple', name: 'Saver' }).expect(201);
    const userId = signup.body.user.id as string;
    let html = (await page(agent, '/account/settings/credits')).text;
    expect(html).toContain('data-testid="save-card">Save a card</button>');
    const start = await agent.post('/account/settings/credits/card').type('form').send({ _csrf: csrfOf(html) }).expect(303);
    const sessionId = sessionOf(String(start.headers.location));
    const session = await stripe.checkout.sessions.retrieve(sessionId);
    expect(session).toMatchObject({ mode: 'setup', amount_total: null, payment_status: 'no_payment_required' });
    // The emulator's page says what happens, then a hard decline (0002) cannot be saved.
    expect((await request(emulator.emulator.app).get(`/c/pay/${sessionId}`).expect(200)).text).toContain('Save a card');
    expect((await pay(sessionId, '4000 0000 0000 0002')).text).toContain('Your card was declined.');
    const done = await pay(sessionId, '4242 4242 4242 4242').expect(303);
    const back = String(done.headers.location).replace(/^https?:\/\/[^/]+/, '');
    expect(back).toBe(`/account/settings/credits/card/saved?session_id=${sessionId}`);
    // The SetupIntent, in Stripe's shape, holds the PaymentMethod attached to the customer.
    const intent = await stripe.setupIntents.retrieve(String((await stripe.checkout.sessions.retrieve(sessionId)).setup_intent));
    expect(intent).toMatchObject({ object: 'setup_intent', status: 'succeeded', usage: 'off_session' });
    const pm = await stripe.paymentMethods.retrieve(String(intent.payment_method));
    expect(pm).toMatchObject({ customer: intent.customer, card: { brand: 'visa', last4: '4242' } });
    await agent.get(back).expect(303);
    html = (await page(agent, '/account/settings/credits')).text;
    expect(html).toContain('Your Visa card ending 4242 is saved.');
    expect(html).toContain('Saved card: <strong>Visa ending 4242</strong>');
    expect(html).toContain('Turn on auto-recharge');
    // Bad values are named beside their fields; nothing is turned on.
    const bad = await agent
      .post('/account/settings/credits/auto-recharge')
      .type('form')
      .send({ _csrf: csrfOf(html), action: 'on', threshold: '-2', packageId: 'starter', maxPerDay: '0', monthlyCeiling: 'lots' })
      .expect(400);
    expect(bad.text).toMatch(/Threshold must/);
    expect(bad.text).toMatch(/Recharges a day must be at least 1/);
    expect(bad.text).toMatch(/Monthly ceiling must be an amount such as 125 or 125.50/);
    expect((await agent.get('/api/credits/auto-recharge').expect(200)).body.enabled).toBe(false);
    await agent
      .post('/account/settings/credits/auto-recharge')
      .type('form')
      .send({ _csrf: csrfOf(html), action: 'on', threshold: '20', packageId: 'starter', maxPerDay: '2', monthlyCeiling: '50' })
      .expect(303);
    expect((await agent.get('/api/credits/auto-recharge').expect(200)).body).toMatchObject({ enabled: true, threshold: 20, maxPerDay: 2, monthlyCeilingCents: 5000, card: { last4: '4242' } });
    // A spend through the app (below 20 already: 10 signup credits) starts one recharge.
    await ta.deps.ledger.debit({ transferId: `page-spend:${userId}`, userId, millicredits: 1 * C, kind: 'usage', actor: 'test' });
    await ta.deps.autoRecharge.settled();
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(109);
    const account = (await page(agent, '/account')).text;
    expect(account).toContain('<h2 id="auto-recharge-title">Auto-recharge</h2>');
    expect(account).toMatch(/<td class="num">\$5\.00<\/td>\s*<td>Credits added<\/td>/);
    expect(account).toContain('Next recharge allowed:');
    expect(account).toContain('href="/account/settings/credits#auto-recharge"');
    // Remove card: detached at Stripe, auto-recharge off.
    html = (await page(agent, '/account/settings/credits')).text;
    await agent.post('/account/settings/credits/card/delete').type('form').send({ _csrf: csrfOf(html) }).expect(303);
    expect((await agent.get('/api/credits/auto-recharge').expect(200)).body).toMatchObject({ enabled: false, card: null });
    expect((await stripe.paymentMethods.retrieve(pm.id)).customer).toBeNull();
  });

  it('a pack bought with "Save my card for auto-recharge" keeps the card it was paid with (setup_future_usage: off_session)', async () => {
    const agent = request.agent(ta.app);
    const email = `packsaver-${crypto.randomBytes(4).toString('hex')}@example.test`;
    await agent.post('/api/auth/signup').send({ email, password: 'correct horse battery staple', name: 'Pack' }).expect(201);
    const pricing = (await page(agent, '/pricing')).text;
    expect(pricing).toContain('name="saveCard" value="on"');
    const start = await agent.post('/checkout').type('form').send({ _csrf: csrfOf(pricing), packageId: 'starter', saveCard: 'on' }).expect(303);
    await pay(sessionOf(String(start.headers.location)), '5555 5555 5555 4444').expect(303);
    await emulator.emulator.deliverDue();
    const overview = (await agent.get('/api/credits/auto-recharge').expect(200)).body;
    expect(overview).toMatchObject({ enabled: false, card: { brand: 'mastercard', last4: '4444' }, threshold: 20, packageId: 'starter' });
    expect(await available(agent)).toBe(110); // the pack itself is fulfilled as usual
    // A purchase without the box saves nothing new.
    const again = (await page(agent, '/pricing')).text;
    const plain = await agent.post('/checkout').type('form').send({ _csrf: csrfOf(again), packageId: 'starter' }).expect(303);
    await pay(sessionOf(String(plain.headers.location)), '4242 4242 4242 4242').expect(303);
    await emulator.emulator.deliverDue();
    expect((await agent.get('/api/credits/auto-recharge').expect(200)).body.card).toMatchObject({ last4: '4444' });
    expect(await available(agent)).toBe(210);
  });
});
