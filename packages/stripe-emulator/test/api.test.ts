import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { startStripeEmulatorServer, type StripeEmulatorServer } from '../src/stripe-emulator.ts';
import { createTestDatabase, type TestDatabase } from '../../../test/helpers/db.ts';

let t: TestDatabase;
let server: StripeEmulatorServer;
let stripe: Stripe;

beforeAll(async () => {
  t = await createTestDatabase();
  server = await startStripeEmulatorServer({ db: t.db, logger: pino({ level: 'silent' }), webhook: undefined, port: 0 });
  stripe = new Stripe('sk_test_x', { host: '127.0.0.1', port: server.port, protocol: 'http', maxNetworkRetries: 0 });
});
afterAll(async () => {
  await server.close();
  await t.drop();
});

const sessionParams = (overrides: Partial<Stripe.Checkout.SessionCreateParams> = {}): Stripe.Checkout.SessionCreateParams => ({
  mode: 'payment',
  line_items: [
    {
      price_data: { currency: 'usd', unit_amount: 1250, product_data: { name: '100 credits', description: 'Starter pack' } },
      quantity: 2,
    },
  ],
  success_url: 'http://localhost:3000/credits/success?session_id={CHECKOUT_SESSION_ID}',
  cancel_url: 'http://localhost:3000/pricing',
  client_reference_id: 'user-1',
  metadata: { paymentId: 'pay_1' },
  payment_intent_data: { metadata: { paymentId: 'pay_1' } },
  ...overrides,
});

async function raw(path: string, init: RequestInit = {}): Promise<{ status: number; body: any; headers: Headers }> {
  const res = await fetch(`${server.url}${path}`, init);
  return { status: res.status, body: await res.json(), headers: res.headers };
}

describe('authentication', () => {
  it('rejects a request without an API key with a Stripe-shaped 401', async () => {
    const res = await raw('/v1/checkout/sessions');
    expect(res.status).toBe(401);
    expect(res.body.error.type).toBe('invalid_request_error');
    expect(res.body.error.message).toMatch(/You did not provide an API key/);
  });

  it('rejects a key that is not sk_test_ (the SDK throws StripeAuthenticationError)', async () => {
    const live = new Stripe('sk_live_abcdefghijklmnop', { host: '127.0.0.1', port: server.port, protocol: 'http' });
    const err = await live.checkout.sessions.list().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeAuthenticationError);
    expect((err as Stripe.errors.StripeError).message).toMatch(/^Invalid API Key provided: sk_live_\*+mnop$/);
  });

  it('accepts HTTP Basic auth with the key as user name', async () => {
    const res = await raw('/v1/events', { headers: { Authorization: `Basic ${Buffer.from('sk_test_abc:').toString('base64')}` } });
    expect(res.status).toBe(200);
    expect(res.body.object).toBe('list');
  });
});

describe('checkout sessions', () => {
  it('creates a session shaped like Stripe’s, with a hosted url on the emulator', async () => {
    const s = await stripe.checkout.sessions.create(sessionParams());
    expect(s.id).toMatch(/^cs_test_[A-Za-z0-9]{58}$/);
    expect(s).toMatchObject({
      object: 'checkout.session',
      livemode: false,
      mode: 'payment',
      status: 'open',
      payment_status: 'unpaid',
      currency: 'usd',
      amount_subtotal: 2500,
      amount_total: 2500,
      client_reference_id: 'user-1',
      metadata: { paymentId: 'pay_1' },
      payment_intent: null,
      success_url: 'http://localhost:3000/credits/success?session_id={CHECKOUT_SESSION_ID}',
      cancel_url: 'http://localhost:3000/pricing',
      url: `${server.url}/c/pay/${s.id}`,
    });
    expect(s.created).toBeGreaterThan(1_600_000_000);
    expect(s.created).toBeLessThan(Date.now() / 1000 + 5);
    expect(s.expires_at - s.created).toBe(24 * 3600);
  });

  it('retrieves a session, and 404s with resource_missing for an unknown id', async () => {
    const created = await stripe.checkout.sessions.create(sessionParams());
    const got = await stripe.checkout.sessions.retrieve(created.id);
    expect(got).toEqual(created);
    const err = await stripe.checkout.sessions.retrieve('cs_test_nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'session', message: "No such checkout.session: 'cs_test_nope'" });
  });

  it('lists line items with the inline price and product', async () => {
    const s = await stripe.checkout.sessions.create(
      sessionParams({
        line_items: [
          { price_data: { currency: 'eur', unit_amount: 500, product_data: { name: 'A' } }, quantity: 1 },
          { price_data: { currency: 'eur', unit_amount: 300, product_data: { name: 'B' } }, quantity: 3 },
        ],
      }),
    );
    const items = await stripe.checkout.sessions.listLineItems(s.id);
    expect(items.object).toBe('list');
    expect(items.url).toBe(`/v1/checkout/sessions/${s.id}/line_items`);
    expect(items.has_more).toBe(false);
    expect(items.data.map((i) => [i.description, i.quantity, i.amount_total])).toEqual([
      ['A', 1, 500],
      ['B', 3, 900],
    ]);
    expect(items.data[1]).toMatchObject({ object: 'item', currency: 'eur', price: { object: 'price', unit_amount: 300, type: 'one_time' } });
    expect(items.data[1]!.price!.product).toMatch(/^prod_/);
    const firstPage = await stripe.checkout.sessions.listLineItems(s.id, { limit: 1 });
    expect(firstPage.has_more).toBe(true);
    const second = await stripe.checkout.sessions.listLineItems(s.id, { limit: 1, starting_after: firstPage.data[0]!.id });
    expect(second.data.map((i) => i.description)).toEqual(['B']);
  });

  it('lists sessions newest first, paginates with starting_after/ending_before, and filters', async () => {
    const a = await stripe.checkout.sessions.create(sessionParams({ client_reference_id: 'list-a' }));
    const b = await stripe.checkout.sessions.create(sessionParams({ client_reference_id: 'list-b' }));
    const c = await stripe.checkout.sessions.create(sessionParams({ client_reference_id: 'list-c' }));
    const page1 = await stripe.checkout.sessions.list({ limit: 2 });
    expect(page1).toMatchObject({ object: 'list', url: '/v1/checkout/sessions', has_more: true });
    expect(page1.data.map((s) => s.id)).toEqual([c.id, b.id]);
    const page2 = await stripe.checkout.sessions.list({ limit: 2, starting_after: b.id });
    expect(page2.data[0]!.id).toBe(a.id);
    const back = await stripe.checkout.sessions.list({ limit: 1, ending_before: a.id });
    expect(back.data.map((s) => s.id)).toEqual([b.id]);
    expect(back.has_more).toBe(true);
    const open = await stripe.checkout.sessions.list({ status: 'open', limit: 100 });
    expect(open.data.every((s) => s.status === 'open')).toBe(true);
    const none = await stripe.checkout.sessions.list({ status: 'complete' });
    expect(none.data).toEqual([]);
  });

  it('auto-paginates through the SDK', async () => {
    const ids: string[] = [];
    for await (const s of stripe.checkout.sessions.list({ limit: 2 })) ids.push(s.id);
    expect(ids.length).toBeGreaterThanOrEqual(5);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('expands line_items and customer', async () => {
    const customer = await stripe.customers.create({ email: 'ada@example.com', name: 'Ada' });
    const s = await stripe.checkout.sessions.create(sessionParams({ customer: customer.id, expand: ['line_items', 'customer'] }));
    expect((s.customer as Stripe.Customer).email).toBe('ada@example.com');
    expect(s.line_items?.data).toHaveLength(1);
    const err = await stripe.checkout.sessions.retrieve(s.id, { expand: ['success_url'] }).catch((e: unknown) => e);
    expect(err).toMatchObject({ statusCode: 400, message: 'This property cannot be expanded (success_url).' });
  });

  it('expires an open session, and refuses to expire it twice', async () => {
    const s = await stripe.checkout.sessions.create(sessionParams());
    const expired = await stripe.checkout.sessions.expire(s.id);
    expect(expired).toMatchObject({ status: 'expired', url: null, payment_status: 'unpaid' });
    const err = await stripe.checkout.sessions.expire(s.id).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect((err as Error).message).toBe(
      'Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of `expired`.',
    );
    const events = await stripe.events.list({ type: 'checkout.session.expired' });
    expect(events.data.map((e) => (e.data.object as Stripe.Checkout.Session).id)).toContain(s.id);
  });

  it('expires a session on its own once expires_at has passed (clock)', async () => {
    let now = new Date();
    const local = await startStripeEmulatorServer({ db: t.db, logger: pino({ level: 'silent' }), webhook: undefined, port: 0, clock: () => now, deliver: false });
    try {
      const sdk = new Stripe('sk_test_x', { host: '127.0.0.1', port: local.port, protocol: 'http' });
      const s = await sdk.checkout.sessions.create(sessionParams({ expires_at: Math.floor(now.getTime() / 1000) + 31 * 60 }));
      now = new Date(now.getTime() + 32 * 60 * 1000);
      expect((await sdk.checkout.sessions.retrieve(s.id)).status).toBe('expired');
    } finally {
      await local.close();
    }
  });
});

describe('parameter validation (the emulator never hides what Stripe would reject)', () => {
  it('rejects an unknown parameter with parameter_unknown and its param', async () => {
    const err = await stripe.checkout.sessions
      .create({ ...sessionParams(), shipping_address_collection: { allowed_countries: ['US'] } })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeInvalidRequestError);
    expect(err).toMatchObject({
      statusCode: 400,
      type: 'StripeInvalidRequestError',
      code: 'parameter_unknown',
      param: 'shipping_address_collection',
      message: 'Received unknown parameter: shipping_address_collection',
    });
  });

  it('names a nested unknown parameter with brackets', async () => {
    const params = sessionParams();
    (params.line_items![0]!.price_data as any).colour = 'blue';
    const err = await stripe.checkout.sessions.create(params).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'parameter_unknown', param: 'line_items[0][price_data][colour]' });
  });

  it('reports a missing required parameter', async () => {
    const { mode: _mode, ...noMode } = sessionParams();
    const err = await stripe.checkout.sessions.create(noMode as Stripe.Checkout.SessionCreateParams).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'parameter_missing', param: 'mode', message: 'Missing required param: mode.' });
    const noQty = sessionParams();
    delete noQty.line_items![0]!.quantity;
    const err2 = await stripe.checkout.sessions.create(noQty).catch((e: unknown) => e);
    expect(err2).toMatchObject({ code: 'parameter_missing', param: 'line_items[0][quantity]' });
  });

  it('reports an invalid integer and an out-of-range value', async () => {
    const res = await raw('/v1/checkout/sessions', {
      method: 'POST',
      headers: { Authorization: 'Bearer sk_test_x', 'Content-Type': 'application/x-www-form-urlencoded' },
      body: 'mode=payment&line_items[0][price_data][currency]=usd&line_items[0][price_data][unit_amount]=12.5&line_items[0][price_data][product_data][name]=x&line_items[0][quantity]=1',
    });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatchObject({
      type: 'invalid_request_error',
      code: 'parameter_invalid_integer',
      param: 'line_items[0][price_data][unit_amount]',
      message: 'Invalid integer: 12.5',
    });
    const zero = sessionParams();
    zero.line_items![0]!.quantity = 0;
    const err = await stripe.checkout.sessions.create(zero).catch((e: unknown) => e);
    expect(err).toMatchObject({ param: 'line_items[0][quantity]', message: 'This value must be greater than or equal to 1.' });
  });

  it('reports an invalid enum value, URL, currency and empty string', async () => {
    const badMode = await stripe.checkout.sessions.create(sessionParams({ mode: 'rent' as 'payment' })).catch((e: unknown) => e);
    expect(badMode).toMatchObject({ param: 'mode', message: 'Invalid mode: must be one of payment, setup, or subscription' });
    const badUrl = await stripe.checkout.sessions.create(sessionParams({ success_url: 'not a url' })).catch((e: unknown) => e);
    expect(badUrl).toMatchObject({ param: 'success_url', code: 'url_invalid' });
    const badCurrency = sessionParams();
    badCurrency.line_items![0]!.price_data!.currency = 'xyz';
    expect(await stripe.checkout.sessions.create(badCurrency).catch((e: unknown) => e)).toMatchObject({
      param: 'line_items[0][price_data][currency]',
    });
    const empty = await stripe.checkout.sessions.create(sessionParams({ client_reference_id: '' })).catch((e: unknown) => e);
    expect(empty).toMatchObject({ param: 'client_reference_id', code: 'parameter_invalid_empty' });
  });

  it('rejects a total under Stripe’s minimum charge, and an unknown customer', async () => {
    const tiny = sessionParams();
    tiny.line_items![0]!.price_data!.unit_amount = 10;
    tiny.line_items![0]!.quantity = 1;
    expect(await stripe.checkout.sessions.create(tiny).catch((e: unknown) => e)).toMatchObject({ code: 'amount_too_small' });
    expect(await stripe.checkout.sessions.create(sessionParams({ customer: 'cus_missing' })).catch((e: unknown) => e)).toMatchObject({
      statusCode: 400,
      code: 'resource_missing',
      param: 'customer',
      message: "No such customer: 'cus_missing'",
    });
  });

  it('rejects expires_at outside 30 minutes to 24 hours', async () => {
    const soon = Math.floor(Date.now() / 1000) + 60;
    expect(await stripe.checkout.sessions.create(sessionParams({ expires_at: soon })).catch((e: unknown) => e)).toMatchObject({
      param: 'expires_at',
    });
  });

  it('404s an unknown URL like Stripe', async () => {
    const res = await raw('/v1/nothing_here', { headers: { Authorization: 'Bearer sk_test_x' } });
    expect(res.status).toBe(404);
    expect(res.body.error.message).toMatch(/^Unrecognized request URL \(GET: \/v1\/nothing_here\)/);
  });

  it('rejects a JSON body', async () => {
    const res = await raw('/v1/customers', {
      method: 'POST',
      headers: { Authorization: 'Bearer sk_test_x', 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: 'a@example.com' }),
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/unsupported Content-Type application\/json/);
  });
});

describe('idempotency keys', () => {
  it('replays the first response for the same key and params, and creates one session', async () => {
    const key = `idem-${Date.now()}`;
    const first = await stripe.checkout.sessions.create(sessionParams({ client_reference_id: 'idem' }), { idempotencyKey: key });
    const again = await stripe.checkout.sessions.create(sessionParams({ client_reference_id: 'idem' }), { idempotencyKey: key });
    expect(again.id).toBe(first.id);
    expect(again.lastResponse.headers['idempotent-replayed']).toBe('true');
    const count = await t.db('stripe_emulator.checkout_sessions').where({ client_reference_id: 'idem' }).count<{ n: string }[]>({ n: '*' });
    expect(Number(count[0]!.n)).toBe(1);
  });

  it('rejects the same key with different params (StripeIdempotencyError)', async () => {
    const key = `idem-diff-${Date.now()}`;
    await stripe.checkout.sessions.create(sessionParams({ client_reference_id: 'one' }), { idempotencyKey: key });
    const err = await stripe.checkout.sessions
      .create(sessionParams({ client_reference_id: 'two' }), { idempotencyKey: key })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect(err).toMatchObject({ statusCode: 400, rawType: 'idempotency_error' });
    expect((err as Error).message).toMatch(/can only be used with the same parameters they were first used with/);
  });

  it('rejects the same key on another endpoint', async () => {
    const key = `idem-endpoint-${Date.now()}`;
    await stripe.customers.create({ email: 'x@example.com' }, { idempotencyKey: key });
    const err = await stripe.checkout.sessions.create(sessionParams(), { idempotencyKey: key }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Stripe.errors.StripeIdempotencyError);
    expect((err as Error).message).toMatch(/same endpoint/);
  });

  it('replays a 4xx the endpoint returned, but stores nothing for a request that failed validation', async () => {
    const key = `idem-err-${Date.now()}`;
    const e1 = await stripe.checkout.sessions.create(sessionParams({ customer: 'cus_nope' }), { idempotencyKey: key }).catch((e: unknown) => e);
    const e2 = await stripe.checkout.sessions.create(sessionParams({ customer: 'cus_nope' }), { idempotencyKey: key }).catch((e: unknown) => e);
    expect(e1).toMatchObject({ code: 'resource_missing' });
    expect(e2).toMatchObject({ code: 'resource_missing' });
    expect((e2 as Stripe.errors.StripeError).headers?.['idempotent-replayed']).toBe('true');

    const key2 = `idem-invalid-${Date.now()}`;
    await stripe.checkout.sessions.create({ ...sessionParams(), bogus: 1 } as never, { idempotencyKey: key2 }).catch(() => undefined);
    const ok = await stripe.checkout.sessions.create(sessionParams(), { idempotencyKey: key2 });
    expect(ok.status).toBe('open');
  });

  it('serializes concurrent requests with one key: both get the same object', async () => {
    const key = `idem-race-${Date.now()}`;
    const results = await Promise.all(
      Array.from({ length: 5 }, () => stripe.checkout.sessions.create(sessionParams({ client_reference_id: 'race' }), { idempotencyKey: key })),
    );
    expect(new Set(results.map((r) => r.id)).size).toBe(1);
  });
});

describe('customers', () => {
  it('creates and retrieves a customer; records customer.created', async () => {
    const c = await stripe.customers.create({ email: 'grace@example.com', name: 'Grace', metadata: { userId: 'u1' } });
    expect(c.id).toMatch(/^cus_[A-Za-z0-9]{14}$/);
    expect(c).toMatchObject({ object: 'customer', email: 'grace@example.com', name: 'Grace', metadata: { userId: 'u1' }, livemode: false });
    expect(await stripe.customers.retrieve(c.id)).toEqual(c);
    const err = await stripe.customers.retrieve('cus_nope').catch((e: unknown) => e);
    expect(err).toMatchObject({ statusCode: 404, code: 'resource_missing', param: 'id' });
    const list = await stripe.customers.list({ email: 'grace@example.com' });
    expect(list.data.map((x) => x.id)).toEqual([c.id]);
  });

  it('deletes a customer as Stripe does: {deleted: true}, personal fields cleared, gone from lists, customer.deleted; twice is a 404', async () => {
    const c = await stripe.customers.create({ email: 'erase-me@example.com', name: 'Erase Me', phone: '+4930123456' });
    const deleted = await stripe.customers.del(c.id);
    expect(deleted).toEqual({ id: c.id, object: 'customer', deleted: true });
    expect(await stripe.customers.retrieve(c.id)).toEqual({ id: c.id, object: 'customer', deleted: true });
    expect((await stripe.customers.list({ email: 'erase-me@example.com' })).data).toEqual([]);
    const row = await t.db('stripe_emulator.customers').where({ id: c.id }).first();
    expect(row).toMatchObject({ email: null, name: null, phone: null });
    expect(row.deleted_at).toBeInstanceOf(Date);
    const events = await stripe.events.list({ type: 'customer.deleted' });
    expect(events.data.map((e) => (e.data.object as { id: string }).id)).toContain(c.id);
    expect(await stripe.customers.del(c.id).catch((e: unknown) => e)).toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });

  it('404s unknown payment intents and charges', async () => {
    expect(await stripe.paymentIntents.retrieve('pi_nope').catch((e: unknown) => e)).toMatchObject({ statusCode: 404, code: 'resource_missing' });
    expect(await stripe.charges.retrieve('ch_nope').catch((e: unknown) => e)).toMatchObject({ statusCode: 404, code: 'resource_missing' });
  });
});
