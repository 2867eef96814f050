import crypto from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type Stripe from 'stripe';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startStripeEmulatorServer, type StripeEmulatorServer } from '@tally/stripe-emulator';
import { createLogger } from '../../src/logger.ts';
import { createStripeClient } from '../../src/payments/stripe-client.ts';
import { createAutoRecharge, type AutoRecharge, type RechargeNotice } from '../../src/recharge/auto-recharge-service.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';

// Auto-recharge against the Stripe emulator, its webhooks delivered to the app.
const SECRET = 'whsec_test_secret';
const C = 1000;
let ta: TestApp;
let emulator: StripeEmulatorServer;
let server: http.Server;
let stripe: Stripe;
let recharge: AutoRecharge;
const notices: Array<{ userId: string; notice: RechargeNotice }> = [];
let now = new Date('2026-11-30T10:00:00Z');

beforeAll(async () => {
  server = http.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const appUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  ta = await buildTestApp({
    env: { APP_URL: appUrl, STRIPE_WEBHOOK_SECRET: SECRET },
    overrides: async (t, config) => {
      emulator = await startStripeEmulatorServer({
        db: t.db,
        logger: createLogger('silent', { pretty: false }),
        port: 0,
        webhook: { url: `${appUrl}/api/payments/webhook`, secret: SECRET },
        deliver: false,
        retry: { baseMs: 10, maxAttempts: 5 },
      });
      stripe = createStripeClient(config, emulator.url);
      return { stripe };
    },
  });
  server.on('request', ta.app);
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
  await emulator.close();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await ta.close();
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
    await ta.deps.ledger.debit({ transferId: `spend:${user.id}`, userId: user.id, millicredits: 100 * C, kind: 'usage', actor: 'test' });
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
    await ta.deps.ledger.debit({ transferId: `spend:${user.id}`, userId: user.id, millicredits: 100 * C, kind: 'usage', actor: 'test' });
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
    expect(page.text).toMatch(/visa card ending 4242/);
    expect(page.text).toContain('$25.00');
    const off = await agent.delete('/api/credits/auto-recharge/card').expect(200);
    expect(off.body).toMatchObject({ enabled: false, card: null, disabledReason: 'card_removed' });
  });
});
