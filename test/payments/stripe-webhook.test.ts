import crypto from 'node:crypto';
import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStripeEmulatorServer, type StripeEmulatorServer } from '@tally/stripe-emulator';
import { createLogger } from '../../src/logger.ts';
import { createStripeClient } from '../../src/payments/stripe-client.ts';
import { createPayments } from '../../src/payments/payments-service.ts';
import { createStripeCustomers } from '../../src/payments/stripe-customers.ts';
import { createStripeWebhook } from '../../src/payments/stripe-webhook.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

// Signed deliveries that are not what Tally expects: each is stored for admins and answered
// 2xx (nothing to retry) or 4xx (malformed); only a transient failure is a 5xx.
const SECRET = 'whsec_test_secret';
let ta: TestApp;
let emulator: StripeEmulatorServer;

beforeAll(async () => {
  ta = await buildTestApp({
    env: { STRIPE_WEBHOOK_SECRET: SECRET },
    overrides: async (t, config) => {
      emulator = await startStripeEmulatorServer({ db: t.db, logger: createLogger('silent', { pretty: false }), port: 0, webhook: undefined, deliver: false });
      return { stripe: createStripeClient(config, emulator.url) };
    },
  });
});
afterAll(async () => {
  await emulator?.close();
  await ta?.close();
});

const signer = new Stripe('sk_test_signer');
const signed = (payload: string) => signer.webhooks.generateTestHeaderString({ payload, secret: SECRET });
const deliver = (payload: string) =>
  request(ta.app).post('/api/payments/webhook').set('Content-Type', 'application/json').set('Stripe-Signature', signed(payload)).send(payload);
const evtId = () => `evt_${crypto.randomBytes(8).toString('hex')}`;
const event = (fields: Record<string, unknown>) =>
  JSON.stringify({ id: evtId(), object: 'event', type: 'customer.created', created: Math.floor(Date.now() / 1000), data: { object: { id: 'x' } }, ...fields });
const problems = () => ta.t.db('stripe_webhook_problems').orderBy('id');
const handled = (id: string) => ta.t.db('stripe_webhook_events').where({ id }).first();

describe('signed but malformed webhook events', () => {
  const cases: Array<[string, string]> = [
    ['no id', JSON.stringify({ object: 'event', type: 'checkout.session.completed', created: 1, data: { object: { id: 'cs_1' } } })],
    ['data.object null', event({ type: 'checkout.session.completed', data: { object: null } })],
    ['no data at all', event({ data: undefined })],
    ['an array body', JSON.stringify([{ id: evtId(), type: 'checkout.session.completed' }])],
    ['a JSON string', JSON.stringify('evt')],
    ['a completed session without its fields', event({ type: 'checkout.session.completed', data: { object: { id: 'cs_x' } } })],
    ['a refund without its charge fields', event({ type: 'charge.refunded', data: { object: { id: 'ch_x' } } })],
  ];
  for (const [what, payload] of cases) {
    it(`${what} → 400 invalid_event, recorded for admins, nothing handled`, async () => {
      const before = (await problems()).length;
      const res = await deliver(payload).expect(400);
      expect(res.body).toMatchObject({ status: 400, code: 'invalid_event' });
      const rows = await problems();
      expect(rows).toHaveLength(before + 1);
      expect(rows.at(-1)).toMatchObject({ problem: 'malformed', status_code: 400, payload_excerpt: payload.slice(0, 4096) });
      const id = (JSON.parse(payload) as { id?: string } | null)?.id;
      if (typeof id === 'string') expect(await handled(id)).toBeUndefined();
    });
  }
});

describe('event types Tally does not handle', () => {
  for (const type of ['customer.created', 'constructor', '__proto__', 'toString', 'hasOwnProperty']) {
    it(`${type} → 200 ignored, recorded once, never an inherited property of the handler table`, async () => {
      const payload = event({ type });
      const id = (JSON.parse(payload) as { id: string }).id;
      const res = await deliver(payload).expect(200);
      expect(res.body).toMatchObject({ received: true, outcome: 'ignored' });
      expect(await handled(id)).toMatchObject({ type, outcome: 'ignored' });
      await deliver(payload).expect(200, { received: true, duplicate: true, outcome: 'duplicate' });
      expect(await ta.t.db('stripe_webhook_problems').where({ event_id: id })).toEqual([expect.objectContaining({ problem: 'unknown_type', status_code: 200 })]);
    });
  }
});

describe('charge.refunded for a payment intent Tally does not know', () => {
  it('→ 200, recorded for an admin (not a 404 for Stripe to retry for days)', async () => {
    const charge = { id: 'ch_unknown', object: 'charge', payment_intent: 'pi_not_ours', amount: 500, amount_refunded: 500, refunds: { data: [] } };
    const payload = event({ type: 'charge.refunded', data: { object: charge } });
    const id = (JSON.parse(payload) as { id: string }).id;
    const res = await deliver(payload).expect(200);
    expect(res.body).toMatchObject({ outcome: 'ignored:unknown_payment' });
    expect(await ta.t.db('stripe_webhook_problems').where({ event_id: id })).toEqual([
      expect.objectContaining({ problem: 'unknown_payment_intent', event_type: 'charge.refunded', status_code: 200 }),
    ]);
  });
});

describe('a transient failure while handling', () => {
  it('stays a 5xx, and nothing is recorded, so Stripe delivers the event again', async () => {
    // Stripe unreachable while looking up the refunded payment intent.
    const unreachable = new Stripe('sk_test_x', { host: '127.0.0.1', port: 9, protocol: 'http', maxNetworkRetries: 0 });
    const logger = createLogger('silent', { pretty: false });
    const customers = createStripeCustomers({ db: ta.t.db, stripe: unreachable, useEmulator: false });
    const payments = createPayments({ db: ta.t.db, ledger: ta.deps.ledger, stripe: unreachable, config: ta.deps.config, logger, customers });
    const webhook = createStripeWebhook({ db: ta.t.db, stripe: unreachable, webhookSecret: SECRET, payments, logger });
    const charge = { id: 'ch_t', object: 'charge', payment_intent: 'pi_somewhere', amount: 500, amount_refunded: 500 };
    const payload = event({ type: 'charge.refunded', data: { object: charge } });
    const id = (JSON.parse(payload) as { id: string }).id;
    const before = (await problems()).length;
    await expect(webhook.handle(Buffer.from(payload), signed(payload))).rejects.toMatchObject({ status: 500 });
    expect(await handled(id)).toBeUndefined();
    expect(await problems()).toHaveLength(before);
  });
});

describe('admins see the problems', () => {
  it('in GET /api/admin/webhook-problems (admins only) and on /admin', async () => {
    const agent = request.agent(ta.app);
    const email = `admin-${crypto.randomBytes(4).toString('hex')}@example.test`;
    const user = (await agent.post('/api/auth/signup').send({ email, password: 'correct horse battery staple', name: 'Ada' }).expect(201)).body.user;
    await agent.get('/api/admin/webhook-problems').expect(403);
    await ta.t.db('users').where({ id: user.id }).update({ role: 'admin' });
    await deliver(event({ type: 'invoice.created' })).expect(200);
    const res = await agent.get('/api/admin/webhook-problems?limit=2').expect(200);
    expect(res.body.problems).toHaveLength(2);
    expect(res.body.problems[0]).toMatchObject({ problem: 'unknown_type', eventType: 'invoice.created', statusCode: 200 });
    expect(res.body.nextCursor).toEqual(expect.any(String));
    const next = await agent.get(`/api/admin/webhook-problems?cursor=${res.body.nextCursor}`).expect(200);
    expect(next.body.problems[0].id).not.toBe(res.body.problems[0].id);
    const page = await agent.get('/admin').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Stripe webhook problems');
    expect(page.text).toContain('Tally does not handle invoice.created events.');
  });
});
