import http from 'node:http';
import type { AddressInfo } from 'node:net';
import Stripe from 'stripe';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import {
  startStripeEmulatorServer,
  type StripeEmulatorServer,
  type StripeEmulatorServerOptions,
} from '../src/stripe-emulator.ts';
import { retryDelayMs } from '../src/webhook-delivery.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db.ts';

const SECRET = 'whsec_test_emulator_secret_0123456789';
const logger = pino({ level: 'silent' });

interface Received {
  body: string;
  signature: string;
  userAgent: string;
  at: number;
}

interface Receiver {
  url: string;
  received: Received[];
  close(): Promise<void>;
}

/** A local webhook endpoint; `respond(n)` gives the status for the n-th request (1-based). */
async function startReceiver(respond: (n: number) => number = () => 200): Promise<Receiver> {
  const received: Received[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({
        body: Buffer.concat(chunks).toString('utf8'),
        signature: String(req.headers['stripe-signature']),
        userAgent: String(req.headers['user-agent']),
        at: Date.now(),
      });
      res.statusCode = respond(received.length);
      res.end();
    });
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  const port = (srv.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/api/payments/webhook`,
    received,
    close: () =>
      new Promise<void>((resolve) => {
        srv.close(() => resolve());
        srv.closeAllConnections();
      }),
  };
}

async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 20));
  }
}

let t: TestDatabase;
const cleanups: (() => Promise<void>)[] = [];

beforeEach(async () => {
  t = await createTestDatabase();
});
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await t.drop();
});

async function emulator(opts: Partial<StripeEmulatorServerOptions> & { webhook: StripeEmulatorServerOptions['webhook'] }) {
  const server = await startStripeEmulatorServer({ db: t.db, logger, port: 0, deliver: false, retry: { baseMs: 20, maxAttempts: 5 }, ...opts });
  cleanups.push(() => server.close());
  const stripe = new Stripe('sk_test_hooks', { host: '127.0.0.1', port: server.port, protocol: 'http' });
  return { server, stripe };
}

async function receiver(respond?: (n: number) => number): Promise<Receiver> {
  const r = await startReceiver(respond);
  cleanups.push(() => r.close());
  return r;
}

/** Creates and pays a session on the checkout page: records 4 events. */
async function pay(server: StripeEmulatorServer, stripe: Stripe): Promise<string> {
  const s = await stripe.checkout.sessions.create({
    mode: 'payment',
    line_items: [{ price_data: { currency: 'usd', unit_amount: 1500, product_data: { name: 'Credits' } }, quantity: 1 }],
    success_url: 'http://localhost:3000/ok',
    metadata: { paymentId: 'pay_7' },
  });
  const res = await fetch(`${server.url}/c/pay/${s.id}`, {
    method: 'POST',
    redirect: 'manual',
    body: new URLSearchParams({ email: 'w@example.com', cardNumber: '4242424242424242', cardExpiry: '12/34', cardCvc: '123', billingName: 'W' }),
  });
  expect(res.status).toBe(303);
  return s.id;
}

const PAY_EVENTS = ['payment_intent.created', 'charge.succeeded', 'payment_intent.succeeded', 'checkout.session.completed'];

describe('webhook delivery', () => {
  it('posts each event signed so stripe.webhooks.constructEvent verifies it', async () => {
    const hook = await receiver();
    const { server, stripe } = await emulator({ webhook: { url: hook.url, secret: SECRET } });
    const sessionId = await pay(server, stripe);

    expect(await server.emulator.deliverDue()).toBe(4);
    expect(hook.received).toHaveLength(4);
    const events = hook.received.map((r) => stripe.webhooks.constructEvent(r.body, r.signature, SECRET));
    expect(events.map((e) => e.type)).toEqual(PAY_EVENTS);
    const completed = events[3]!;
    expect(completed.data.object).toMatchObject({ object: 'checkout.session', id: sessionId, status: 'complete', payment_status: 'paid', metadata: { paymentId: 'pay_7' } });
    expect(completed).toEqual(JSON.parse(hook.received[3]!.body));
    expect(completed.pending_webhooks).toBe(1);
    expect(hook.received[0]!.signature).toMatch(/^t=\d+,v1=[0-9a-f]{64}$/);
    expect(hook.received[0]!.userAgent).toMatch(/^Stripe\/1\.0/);

    expect(() => stripe.webhooks.constructEvent(hook.received[0]!.body, hook.received[0]!.signature, 'whsec_wrong')).toThrow(
      Stripe.errors.StripeSignatureVerificationError,
    );
    // Once delivered, nothing is pending and nothing is sent again.
    expect((await stripe.events.retrieve(completed.id)).pending_webhooks).toBe(0);
    expect(await server.emulator.deliverDue()).toBe(0);
  });

  it('retries an endpoint that fails (500 twice) with backoff, and then delivers', async () => {
    const hook = await receiver((n) => (n <= 2 ? 500 : 200));
    const { server, stripe } = await emulator({ webhook: { url: hook.url, secret: SECRET }, retry: { baseMs: 50, maxAttempts: 5 } });
    const customer = await stripe.customers.create({ email: 'retry@example.com' });
    server.emulator.startDelivery();

    await waitFor(() => hook.received.length >= 3);
    const ids = hook.received.map((r) => stripe.webhooks.constructEvent(r.body, r.signature, SECRET).id);
    expect(new Set(ids).size).toBe(1);
    expect(JSON.parse(hook.received[2]!.body).data.object.id).toBe(customer.id);
    // 1st retry after ~baseMs, 2nd after ~2×baseMs
    expect(hook.received[1]!.at - hook.received[0]!.at).toBeGreaterThanOrEqual(45);
    expect(hook.received[2]!.at - hook.received[1]!.at).toBeGreaterThanOrEqual(95);
    await waitFor(async () => (await t.db('stripe_emulator.webhook_deliveries').first())?.status === 'delivered');
    const row = await t.db('stripe_emulator.webhook_deliveries').first();
    expect(row).toMatchObject({ status: 'delivered', attempts: 3, last_response_status: 200 });
    await new Promise((r) => setTimeout(r, 300));
    expect(hook.received).toHaveLength(3);
  });

  it('gives up after maxAttempts, recording the last error', async () => {
    const hook = await receiver(() => 503);
    const { server, stripe } = await emulator({ webhook: { url: hook.url, secret: SECRET }, retry: { baseMs: 10, maxAttempts: 3 } });
    await stripe.customers.create({ email: 'gone@example.com' });
    server.emulator.startDelivery();
    await waitFor(async () => (await t.db('stripe_emulator.webhook_deliveries').first())?.status === 'failed');
    expect(await t.db('stripe_emulator.webhook_deliveries').first()).toMatchObject({ attempts: 3, last_response_status: 503, last_error: 'HTTP 503' });
    expect(hook.received).toHaveLength(3);
  });

  it('retries network failures too', async () => {
    const hook = await receiver();
    const url = hook.url;
    await hook.close();
    const { server, stripe } = await emulator({ webhook: { url, secret: SECRET } });
    await stripe.customers.create({ email: 'net@example.com' });
    expect(await server.emulator.deliverDue()).toBe(1);
    const row = await t.db('stripe_emulator.webhook_deliveries').first();
    expect(row).toMatchObject({ status: 'pending', attempts: 1, last_response_status: null });
    expect(row.last_error).toBeTruthy();
  });

  it('keeps pending deliveries in Postgres: a new emulator instance delivers them after a restart', async () => {
    const hook = await receiver();
    const first = await emulator({ webhook: { url: hook.url, secret: SECRET } });
    await pay(first.server, first.stripe);
    await first.server.close();
    expect(hook.received).toHaveLength(0);
    const pending = await t.db('stripe_emulator.webhook_deliveries').where({ status: 'pending' });
    expect(pending).toHaveLength(4);

    const second = await emulator({ webhook: { url: hook.url, secret: SECRET }, deliver: true });
    await waitFor(() => hook.received.length >= 4);
    const types = hook.received.map((r) => second.stripe.webhooks.constructEvent(r.body, r.signature, SECRET).type);
    expect(types).toEqual(PAY_EVENTS);
  });

  it('two emulator processes polling one database send each event once', async () => {
    const hook = await receiver();
    const a = await emulator({ webhook: { url: hook.url, secret: SECRET }, pollMs: 5 });
    const b = await emulator({ webhook: { url: hook.url, secret: SECRET }, pollMs: 5 });
    for (let i = 0; i < 5; i++) await pay(a.server, a.stripe);
    a.server.emulator.startDelivery();
    b.server.emulator.startDelivery();
    await waitFor(() => hook.received.length >= 20);
    await new Promise((r) => setTimeout(r, 200));
    const ids = hook.received.map((r) => JSON.parse(r.body).id as string);
    expect(ids).toHaveLength(20);
    expect(new Set(ids).size).toBe(20);
  });

  it('records events without delivering when no webhook is configured', async () => {
    const { server, stripe } = await emulator({ webhook: undefined });
    await stripe.customers.create({ email: 'quiet@example.com' });
    expect(await server.emulator.deliverDue()).toBe(0);
    expect(await t.db('stripe_emulator.webhook_deliveries')).toHaveLength(0);
    expect((await stripe.events.list({ type: 'customer.created' })).data).toHaveLength(1);
  });
});

describe('retry schedule', () => {
  it('doubles from baseMs and caps at maxMs', () => {
    const r = { baseMs: 1000, maxMs: 5000 };
    expect([1, 2, 3, 4, 5].map((n) => retryDelayMs(n, r))).toEqual([1000, 2000, 4000, 5000, 5000]);
  });
});
