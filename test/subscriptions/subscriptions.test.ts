import Stripe from 'stripe';
import request from 'supertest';
import { describe, expect, it } from 'vitest';
import { prorate } from '../../src/subscriptions/subscriptions-service.ts';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import type { TestApp } from '../helpers/app.ts';
import { availableCredits, payOnCheckoutPage as payOnCheckoutPageAs, signupAgent, useStripeTestApp, WEBHOOK_SECRET } from '../helpers/stripe-app.ts';

/**
 * Subscriptions end to end through the HTTP API, on the Stripe emulator with its default test
 * clock (every customer the app creates lives on it): renewals happen by advancing the clock
 * through the Stripe SDK, as on real Stripe; webhooks are delivered by `deliverDue()`.
 */

const SECRET = WEBHOOK_SECRET;
const DAY = 86_400;
let ta: TestApp;
let emulator: StripeEmulatorServer;
let stripe: Stripe;
useStripeTestApp((app) => ({ ta, emulator, stripe } = app));

const signup = () => signupAgent(ta.app, 'Subscriber');
const available = availableCredits;
const payOnCheckoutPage = (sessionId: string, card: string) => payOnCheckoutPageAs(emulator, sessionId, card, 'Subscriber');

async function current(agent: request.Agent) {
  return (await agent.get('/api/subscriptions/current').expect(200)).body.subscription;
}

async function subscribe(agent: request.Agent, planId = 'pro', card = '4242 4242 4242 4242') {
  const checkout = await agent.post('/api/subscriptions/checkout').send({ planId }).expect(201);
  expect(checkout.body.checkoutUrl).toContain(`/c/pay/${checkout.body.sessionId}`);
  const paid = await payOnCheckoutPage(checkout.body.sessionId, card).expect(303);
  return { sessionId: checkout.body.sessionId as string, successUrl: paid.headers.location as string };
}

async function defaultClock() {
  const list = await stripe.testHelpers.testClocks.list();
  const clock = list.data.find((c) => c.name === 'Tally default test clock');
  if (!clock) throw new Error('no default test clock');
  return clock;
}

/** Advances the default test clock to `unixSeconds` through the SDK, then delivers the webhooks. */
async function advanceTo(unixSeconds: number) {
  const clock = await defaultClock();
  const advanced = await stripe.testHelpers.testClocks.advance(clock.id, { frozen_time: unixSeconds });
  expect(advanced.status).toBe('ready');
  await emulator.emulator.deliverDue();
}

const unix = (iso: string) => Math.floor(new Date(iso).getTime() / 1000);

/** The user's subscription lots: period grants and rolled-over credits, oldest first. */
async function lotsOf(userId: string) {
  return ta.t.db('lots as l').join('transfers as t', 't.id', 'l.transfer_id').join('accounts as a', 'a.id', 'l.account_id').where('a.user_id', userId).whereIn('l.source', ['subscription_grant', 'rollover']).orderBy('l.created_at').select('t.id', 'l.source', 'l.amount', 'l.expires_at');
}

async function portalAction(agent: request.Agent, action: string, form: Record<string, string> = {}) {
  const { url } = (await agent.post('/api/billing/portal').expect(200)).body as { url: string };
  const path = new URL(url).pathname;
  const page = await request(emulator.emulator.app).get(path).expect(200);
  expect(page.text).toContain('Manage your billing');
  await request(emulator.emulator.app).post(`${path}/${action}`).type('form').send(form).expect(303);
  await emulator.emulator.deliverDue();
}

describe('plans', () => {
  it('lists the seeded plans, Pro at $19 a month for 1,000 credits with a 500 rollover cap', async () => {
    const res = await request(ta.app).get('/api/subscriptions/plans').expect(200);
    expect(res.body.plans).toContainEqual({ id: 'pro', name: 'Pro', credits: 1000, interval: 'month', amountCents: 1900, currency: 'usd', rolloverCapCredits: 500, rolloverPeriods: 1 });
    expect(res.body.plans.map((p: { id: string }) => p.id)).toContain('pro_yearly');
  });

  it('refuses an unknown plan with a 400 naming the field, and a second subscription with a 409 and a link', async () => {
    const { agent } = await signup();
    const bad = await agent.post('/api/subscriptions/checkout').send({ planId: 'gold' }).expect(400);
    expect(bad.body.errors[0].field).toBe('body.planId');
    await subscribe(agent);
    await emulator.emulator.deliverDue();
    const again = await agent.post('/api/subscriptions/checkout').send({ planId: 'pro_plus' }).expect(409);
    expect(again.body.changePlanUrl).toContain('/account#subscription');
  });
});

describe('one live subscription per user', () => {
  it('two checkouts paid at once: the database keeps one live subscription, the other is cancelled at Stripe and credits nothing', async () => {
    const { agent, user } = await signup();
    // Two tabs: both sessions are opened before either is paid, so neither sees a subscription.
    const [a, b] = [
      (await agent.post('/api/subscriptions/checkout').send({ planId: 'pro' }).expect(201)).body.sessionId as string,
      (await agent.post('/api/subscriptions/checkout').send({ planId: 'pro_plus' }).expect(201)).body.sessionId as string,
    ];
    const paid = await Promise.all([a, b].map((id) => payOnCheckoutPage(id, '4242 4242 4242 4242').expect(303)));
    // Both success pages and every webhook at once.
    const pages = paid.map((p) => agent.get(new URL(p.headers.location as string).pathname + new URL(p.headers.location as string).search).set('Accept', 'text/html'));
    const results = await Promise.all([...pages, emulator.emulator.deliverDue()]);
    for (const r of results.slice(0, 2)) expect((r as request.Response).status).toBe(303);
    await emulator.emulator.deliverDue(); // the cancellation's own events

    const rows = await ta.t.db('subscriptions').where({ user_id: user.id }).orderBy('created_at');
    expect(rows).toHaveLength(2);
    const kept = rows.filter((r) => r.duplicate_of === null);
    const dropped = rows.filter((r) => r.duplicate_of !== null);
    expect(kept.map((r) => r.status)).toEqual(['active']);
    expect(dropped.map((r) => [r.status, r.duplicate_of])).toEqual([['canceled', kept[0].id]]);
    expect((await stripe.subscriptions.retrieve(dropped[0].stripe_subscription_id)).status).toBe('canceled');
    expect((await stripe.subscriptions.retrieve(kept[0].stripe_subscription_id)).status).toBe('active');
    // Credits of the kept plan's period only, once.
    const plan = kept[0].plan_id === 'pro' ? 1000 : 3000;
    expect(await available(agent)).toBe(10 + plan);
    expect((await lotsOf(user.id)).length).toBe(1);
    expect((await current(agent)).plan.id).toBe(kept[0].plan_id);
    // The success page of the dropped one says so and points to the plan change.
    const flash = await agent.get('/account').set('Accept', 'text/html').expect(200);
    expect(flash.text).toContain('this second one was cancelled');
    // A third checkout is refused with the link to change plan.
    const again = await agent.post('/api/subscriptions/checkout').send({ planId: 'pro' }).expect(409);
    expect(again.body.changePlanUrl).toContain('/account#subscription');
  });

  it('the database refuses a second live subscription row for one user', async () => {
    const { user } = await signup();
    const row = (id: string) => ({ user_id: user.id, stripe_subscription_id: id, stripe_customer_id: 'cus_x', plan_id: 'pro', status: 'active', current_period_start: new Date('2026-11-01'), current_period_end: new Date('2026-12-01') });
    await ta.t.db('subscriptions').insert(row('sub_one'));
    await expect(ta.t.db('subscriptions').insert(row('sub_two'))).rejects.toMatchObject({ code: '23505', constraint: 'subscriptions_one_live_per_user' });
    await ta.t.db('subscriptions').insert({ ...row('sub_three'), status: 'canceled' });
  });
});

describe('the lifecycle on a test clock', () => {
  it('subscribe → first grant → renewal with capped rollover → upgrade with prorated credits → cancel → no grant after the end', async () => {
    const { agent, user } = await signup();
    expect(await available(agent)).toBe(10); // sign-up credits

    // Subscribe: the first paid invoice grants 1,000 credits expiring at the period end.
    await subscribe(agent);
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(1010);
    let sub = await current(agent);
    expect(sub).toMatchObject({ status: 'active', plan: { id: 'pro' }, cancelAtPeriodEnd: false, creditsGrantedThisPeriod: 1000, rolloverCredits: 0 });
    const firstEnd = sub.periodEnd as string;
    expect((await lotsOf(user.id)).map((l) => [Number(l.amount), new Date(l.expires_at).toISOString()])).toEqual([[1_000_000, firstEnd]]);

    // Spend 300, soonest-expiring lots first (the grant or the sign-up credits, whichever ends first).
    await ta.deps.ledger.debit({ transferId: `spend-${user.id}`, userId: user.id, millicredits: 300_000, kind: 'usage', actor: `user:${user.id}` });
    const signupLeft = Number((await ta.t.db('lots as l').join('accounts as a', 'a.id', 'l.account_id').where({ 'a.user_id': user.id, 'l.source': 'signup_bonus' }).first('l.remaining')).remaining);
    const grantUnspent = 1_000_000 - (300_000 - (10_000 - signupLeft));
    expect(grantUnspent).toBeGreaterThan(500_000);

    // A month later: the renewal grants 1,000 and rolls over min(unspent, 500) = 500; the rest expires.
    await advanceTo(unix(firstEnd) + 3600);
    sub = await current(agent);
    expect(sub).toMatchObject({ status: 'active', creditsGrantedThisPeriod: 1000, rolloverCredits: 500, rolloverCreditsLeft: 500 });
    expect(sub.periodStart).toBe(firstEnd);
    expect(sub.rolloverExpiresAt).toBe(sub.periodEnd);
    expect(await available(agent) * 1000).toBe(1_500_000 + signupLeft);
    const firstGrant = (await ta.t.db('subscription_periods').join('subscriptions', 'subscriptions.id', 'subscription_periods.subscription_id').where('subscriptions.user_id', user.id).orderBy('period_start').first('grant_transfer_id')).grant_transfer_id;
    const expired = await ta.t.db('transfers').where({ kind: 'expiry' }).whereIn('reference_id', ta.t.db('lots').select(ta.t.db.raw('id::text')).where({ transfer_id: firstGrant })).sum({ n: 'amount' }).first();
    expect(Number(expired!.n)).toBe(grantUnspent);
    // The rolled-over credits are a lot of their own, source `rollover`, and history says so.
    const rolled = (await lotsOf(user.id)).filter((l) => l.source === 'rollover');
    expect(rolled.map((l) => [Number(l.amount), new Date(l.expires_at).toISOString()])).toEqual([[500_000, sub.periodEnd]]);
    const statement = (await agent.get('/api/credits/transfers').query({ kind: 'rollover' }).expect(200)).body;
    expect(statement.transfers.map((t: { kind: string; amount: number }) => [t.kind, t.amount])).toEqual([['rollover', 500]]);
    const account = await agent.get('/account').set('Accept', 'text/html').expect(200);
    expect(account.text).toMatch(/<td[^>]*>Rollover<\/td>/);

    // Upgrade to Pro Plus (3,000 credits) ten days into the period: prorated difference, rounded down.
    const periodStart = unix(sub.periodStart);
    const periodEnd = unix(sub.periodEnd);
    await advanceTo(periodStart + 10 * DAY);
    const changed = await agent.post('/api/subscriptions/current/plan').send({ planId: 'pro_plus' }).expect(200);
    expect(changed.body.change).toBe('upgraded');
    await emulator.emulator.deliverDue();
    const expected = prorate(2_000_000, periodEnd - (periodStart + 10 * DAY), periodEnd - periodStart);
    expect(expected).toBeGreaterThan(1_000_000);
    sub = await current(agent);
    expect(sub.plan.id).toBe('pro_plus');
    expect(sub.creditsGrantedThisPeriod * 1000).toBe(1_000_000 + expected);
    expect(await available(agent) * 1000).toBe(1_500_000 + signupLeft + expected);
    const invoices = (await agent.get('/api/subscriptions/current/invoices').expect(200)).body.invoices;
    expect(invoices[0]).toMatchObject({ billingReason: 'subscription_update', status: 'paid', proratedCredits: expected / 1000 });
    expect(invoices[0].amountDueCents).toBe(Math.round((4900 * (periodEnd - periodStart - 10 * DAY)) / (periodEnd - periodStart)) - Math.round((1900 * (periodEnd - periodStart - 10 * DAY)) / (periodEnd - periodStart)));

    // Cancel at period end, then pass the end: no further grant; the credits stay until they expire.
    const cancelled = await agent.post('/api/subscriptions/current/cancel').send({}).expect(200);
    expect(cancelled.body.subscription.cancelAtPeriodEnd).toBe(true);
    const before = await available(agent);
    const lotsBefore = (await lotsOf(user.id)).length;
    await advanceTo(periodEnd + 3600);
    sub = await current(agent);
    expect(sub.status).toBe('canceled');
    expect((await lotsOf(user.id)).length).toBe(lotsBefore);
    expect(await available(agent)).toBe(before);
    await ta.deps.ledger.debit({ transferId: `spend2-${user.id}`, userId: user.id, millicredits: 100_000, kind: 'usage', actor: `user:${user.id}` });
    expect(await available(agent)).toBe(before - 100);
    // A month later still nothing.
    await advanceTo(periodEnd + 32 * DAY);
    expect((await lotsOf(user.id)).length).toBe(lotsBefore);
  });

  it('resume undoes a cancel before the period ends, and the next renewal grants again', async () => {
    const { agent } = await signup();
    await subscribe(agent);
    await emulator.emulator.deliverDue();
    await agent.post('/api/subscriptions/current/cancel').send({}).expect(200);
    const resumed = await agent.post('/api/subscriptions/current/resume').send({}).expect(200);
    expect(resumed.body.subscription.cancelAtPeriodEnd).toBe(false);
    await advanceTo(unix(resumed.body.subscription.periodEnd) + 60);
    const sub = await current(agent);
    expect(sub.status).toBe('active');
    expect(sub.periodStart).toBe(resumed.body.subscription.periodEnd);
    expect(sub.rolloverCredits).toBe(500);
    expect(await available(agent)).toBe(10 + 1000 + 500);
  });

  it('a downgrade takes effect at the next renewal', async () => {
    const { agent } = await signup();
    await subscribe(agent, 'pro_plus');
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(3010);
    const changed = await agent.post('/api/subscriptions/current/plan').send({ planId: 'pro' }).expect(200);
    expect(changed.body.change).toBe('downgrade_scheduled');
    await emulator.emulator.deliverDue();
    let sub = await current(agent);
    expect(sub.plan.id).toBe('pro_plus');
    expect(sub.nextPlan.id).toBe('pro');
    expect(await available(agent)).toBe(3010);
    await advanceTo(unix(sub.periodEnd) + 60);
    sub = await current(agent);
    expect(sub).toMatchObject({ plan: { id: 'pro' }, nextPlan: null, creditsGrantedThisPeriod: 1000, rolloverCredits: 1500 });
  });
});

describe('a yearly plan', () => {
  it('is billed once a year and grants 1,000 credits every month, with the rollover', async () => {
    const { agent, user } = await signup();
    await subscribe(agent, 'pro_yearly');
    await emulator.emulator.deliverDue();
    let sub = await current(agent);
    expect(sub).toMatchObject({ status: 'active', plan: { id: 'pro_yearly', interval: 'year' }, creditsGrantedThisPeriod: 1000 });
    const monthEnd = sub.creditsPeriodEnd as string;
    expect(new Date(sub.periodEnd).getTime() - new Date(sub.periodStart).getTime()).toBeGreaterThan(360 * DAY * 1000);
    // The test clock passes the first month: the clock's 'ready' event credits the second month.
    await advanceTo(unix(monthEnd) + 60);
    sub = await current(agent);
    expect(sub.creditsPeriodStart).toBe(monthEnd);
    expect(sub).toMatchObject({ creditsGrantedThisPeriod: 1000, rolloverCredits: 500 });
    expect((await lotsOf(user.id)).length).toBe(3);
    const invoices = (await agent.get('/api/subscriptions/current/invoices').expect(200)).body.invoices;
    expect(invoices).toHaveLength(1); // still one invoice: billed yearly
    // The sweeper running again changes nothing.
    expect(await ta.deps.subscriptions.creditDueMonths()).toBe(0);
  });
});

describe('failed renewals', () => {
  it('a card that fails at renewal → past_due and no grant; fixing the card in the portal → one grant', async () => {
    const { agent, user } = await signup();
    await subscribe(agent, 'pro', '4000 0000 0000 0341');
    await emulator.emulator.deliverDue();
    expect(await available(agent)).toBe(1010);
    const end = (await current(agent)).periodEnd as string;

    await advanceTo(unix(end) + 60);
    let sub = await current(agent);
    expect(sub.status).toBe('past_due');
    expect(sub.creditsGrantedThisPeriod).toBe(1000); // still the first period's
    expect(sub.creditsPeriodEnd).toBe(end);
    expect((await lotsOf(user.id)).length).toBe(1);
    const invoices = (await agent.get('/api/subscriptions/current/invoices').expect(200)).body.invoices;
    expect(invoices[0]).toMatchObject({ billingReason: 'subscription_cycle', status: 'open', attemptCount: 1 });

    // The user fixes the card in the customer portal; the open invoice is paid with it.
    await portalAction(agent, 'card', { cardNumber: '4242 4242 4242 4242', cardExpiry: '12 / 34', cardCvc: '123', billingName: 'Subscriber' });
    sub = await current(agent);
    expect(sub.status).toBe('active');
    expect(sub.creditsPeriodStart).toBe(end);
    expect(sub.rolloverCredits).toBe(500);
    expect((await lotsOf(user.id)).length).toBe(3); // first grant, renewal grant, rollover
    // The automatic retry comes later too, and grants nothing more.
    await advanceTo(unix(end) + 4 * DAY);
    expect((await lotsOf(user.id)).length).toBe(3);
    // Emails through the notification outbox: one payment-failed notice with the fix-card link, one renewal receipt.
    const emails = await ta.t.db('email_outbox').where({ user_id: user.id }).whereIn('type', ['subscription_payment_failed', 'subscription_renewal']).orderBy('created_at');
    expect(emails.map((e) => e.type)).toEqual(['subscription_payment_failed', 'subscription_renewal']);
    expect(emails[0].text_body).toContain('/account#subscription');
  });
});

describe('exactly once per (subscription, period)', () => {
  it('events delivered twice, out of order and concurrently, with the success page, make one lot per period', async () => {
    const { agent, user } = await signup();
    const started = Math.floor(Date.now() / 1000) - 5;
    const { successUrl } = await subscribe(agent);
    // Every event so far, newest first (out of order), re-sent under new ids so the event-id
    // dedup does not hide a second grant; each twice, all at once, with the success page.
    const events = (await stripe.events.list({ limit: 100, created: { gte: started } })).data.filter((e) => /^(checkout\.session|customer\.subscription|invoice)\./.test(e.type));
    expect(events.map((e) => e.type)).toEqual(expect.arrayContaining(['checkout.session.completed', 'invoice.paid', 'customer.subscription.created']));
    const deliveries = [...events, ...events].map((e, i) => {
      const payload = JSON.stringify({ ...e, id: `${e.id}_copy${i}` });
      return request(ta.app).post('/api/payments/webhook').set('Stripe-Signature', stripe.webhooks.generateTestHeaderString({ payload, secret: SECRET })).set('Content-Type', 'application/json').send(payload);
    });
    const page = agent.get(new URL(successUrl).pathname + new URL(successUrl).search).set('Accept', 'text/html');
    const results = await Promise.all([...deliveries, page]);
    for (const r of results.slice(0, -1)) expect(r.status).toBe(200);
    expect(results.at(-1)!.status).toBe(303);
    await emulator.emulator.deliverDue(); // and the emulator's own deliveries
    expect(await available(agent)).toBe(1010);
    expect((await lotsOf(user.id)).length).toBe(1);
    expect(await ta.t.db('subscription_periods').join('subscriptions', 'subscriptions.id', 'subscription_periods.subscription_id').where('subscriptions.user_id', user.id).count({ n: '*' }).first()).toEqual({ n: 1 });
  });
});

/** A new user made admin, signed in. */
async function signInAdmin() {
  const { agent, user } = await signupAgent(ta.app, 'Admin');
  await ta.t.db('users').where({ id: user.id }).update({ role: 'admin' });
  return agent;
}

describe('admin', () => {
  it("grants the current period's credits by hand once per (user, period), and shows the subscription with its invoices", async () => {
    const { agent, user } = await signup();
    const admin = await signInAdmin();

    // Paid, but the webhook never came (an outage): the admin grants the period.
    await subscribe(agent);
    const noReason = await admin.post(`/api/admin/users/${user.id}/subscription-grants`).send({}).expect(400);
    expect(noReason.body.errors[0].field).toBe('body.reason');
    await ta.deps.subscriptions.sync((await stripe.subscriptions.list({ customer: (await ta.t.db('stripe_customers').where({ user_id: user.id }).first()).customer_id })).data[0]!.id).catch(() => undefined);
    // (the sync above credits the period from its paid invoice: the admin's grant then changes nothing)
    const first = await admin.post(`/api/admin/users/${user.id}/subscription-grants`).send({ reason: 'Webhook outage on 30 Nov' });
    expect(first.status).toBe(200);
    expect(first.body.granted).toBe(false);
    expect(await available(agent)).toBe(1010);

    const shown = await admin.get(`/api/admin/users/${user.id}/subscription`).expect(200);
    expect(shown.body.subscription.status).toBe('active');
    expect(shown.body.invoices).toHaveLength(1);
    const page = await admin.get(`/admin/users/${user.id}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Pro');
  });

  it('a hand grant before the invoice webhook arrives is the period\'s one grant', async () => {
    const { agent, user } = await signup();
    const admin = await signInAdmin();
    await subscribe(agent);
    // Mirror the subscription without crediting (as if only customer.subscription.created had come).
    const customer = (await ta.t.db('stripe_customers').where({ user_id: user.id }).first()).customer_id;
    const s = (await stripe.subscriptions.list({ customer })).data[0]!;
    await ta.t.db('subscriptions').insert({
      user_id: user.id,
      stripe_subscription_id: s.id,
      stripe_customer_id: customer,
      plan_id: 'pro',
      status: 'active',
      current_period_start: new Date(s.items.data[0]!.current_period_start * 1000),
      current_period_end: new Date(s.items.data[0]!.current_period_end * 1000),
    });
    const [a, b] = await Promise.all([
      admin.post(`/api/admin/users/${user.id}/subscription-grants`).send({ reason: 'Webhook outage' }),
      admin.post(`/api/admin/users/${user.id}/subscription-grants`).send({ reason: 'Webhook outage' }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 201]);
    expect(await available(agent)).toBe(1010);
    await emulator.emulator.deliverDue(); // the invoice webhooks arrive after all
    expect(await available(agent)).toBe(1010);
    expect((await lotsOf(user.id)).length).toBe(1);
  });
});

describe('pages', () => {
  it('/pricing shows the plans beside the packs; /account shows this period, rollover and their expiries apart; past_due offers a fix-card button', async () => {
    const pricing = await request(ta.app).get('/pricing').set('Accept', 'text/html').expect(200);
    expect(pricing.text).toContain('Subscribe');
    expect(pricing.text).toContain('$19.00 / month');
    expect(pricing.text).toContain('Starter');
    const { agent } = await signup();
    await subscribe(agent, 'pro', '4000 0000 0000 0341');
    await emulator.emulator.deliverDue();
    let page = await agent.get('/account').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain("This period's credits");
    expect(page.text).toMatch(/data-testid="period-credits">1,000</);
    expect(page.text).not.toMatch(/sub_|in_[A-Za-z0-9]{10}/);
    await advanceTo(unix((await current(agent)).periodEnd) + 60);
    page = await agent.get('/account').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Fix your card');
    expect(page.text).toContain('Payment failed');
  });
});

describe('customer portal', () => {
  it('POST /api/billing/portal gives a portal URL; cancelling there is seen by Tally', async () => {
    const { agent } = await signup();
    await request(ta.app).post('/api/billing/portal').expect(401);
    expect((await agent.post('/api/billing/portal').expect(404)).body.type).toMatch(/not-found|not_found/);
    await subscribe(agent);
    await emulator.emulator.deliverDue();
    await portalAction(agent, 'cancel');
    expect((await current(agent)).cancelAtPeriodEnd).toBe(true);
    await portalAction(agent, 'resume');
    expect((await current(agent)).cancelAtPeriodEnd).toBe(false);
  });
});
