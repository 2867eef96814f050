import request from 'supertest';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWebhookService } from '../../src/webhooks/webhook-service.ts';
import { isBlockedAddress } from '../../src/webhooks/url-guard.ts';
import { DISABLE_AFTER_MS, webhookRetryDelayMs } from '../../src/webhooks/webhook-sender.ts';
import { createWebhookSender } from '../../src/webhooks/webhook-sender.ts';
import { signedInUser } from '../auth/auth-helpers.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { buildUser, fundAccount } from '../helpers/factories.ts';
import { manualClock, startReceiver, type TestReceiver } from './helpers.ts';

let ta: TestApp;
let receiver: TestReceiver;
const clock = manualClock();

beforeAll(async () => {
  receiver = await startReceiver();
  ta = await buildTestApp({ notify: { clock } });
});
afterAll(async () => {
  await ta.close();
  await receiver.close();
});

const sender = () => ta.deps.notifications.webhookSender;

async function registered(events = ['credits.granted', 'balance.low']) {
  const { agent, user } = await signedInUser(ta.app);
  const res = await agent.post('/api/webhook-endpoints').send({ url: receiver.url, events, description: 'Local receiver' }).expect(201);
  return { agent, user, endpoint: res.body.endpoint as { id: string }, secret: res.body.secret as string };
}

describe('endpoints', () => {
  it('registers an endpoint with its signing secret shown once; lists, reads and deletes it; 404 for other users', async () => {
    const { agent, endpoint, secret } = await registered();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9+/]+=*$/);
    const list = await agent.get('/api/webhook-endpoints').expect(200);
    expect(list.body.endpoints).toEqual([expect.objectContaining({ id: endpoint.id, url: receiver.url, events: ['credits.granted', 'balance.low'], status: 'enabled' })]);
    expect(JSON.stringify(list.body)).not.toContain(secret);
    expect(JSON.stringify((await agent.get(`/api/webhook-endpoints/${endpoint.id}`).expect(200)).body)).not.toContain(secret);
    const { agent: other } = await signedInUser(ta.app);
    await other.get(`/api/webhook-endpoints/${endpoint.id}`).expect(404);
    await other.delete(`/api/webhook-endpoints/${endpoint.id}`).expect(404);
    await agent.delete(`/api/webhook-endpoints/${endpoint.id}`).expect(204);
    await agent.get(`/api/webhook-endpoints/${endpoint.id}`).expect(404);
  });

  it('refuses bad input with a 400 naming each field, and registers nothing', async () => {
    const { agent } = await signedInUser(ta.app);
    const res = await agent.post('/api/webhook-endpoints').send({ url: 'ftp://example.com/x', events: ['credits.granted', 'nope'], extra: 1 }).expect(400);
    const fields = res.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['body.events.1', 'body.extra']));
    const scheme = await agent.post('/api/webhook-endpoints').send({ url: 'ftp://example.com/x', events: ['credits.granted'] }).expect(400);
    expect(scheme.body.errors).toEqual([{ field: 'body.url', message: expect.stringContaining('only http and https') }]);
    await agent.post('/api/webhook-endpoints').send({ url: receiver.url, events: [] }).expect(400);
    expect((await agent.get('/api/webhook-endpoints').expect(200)).body.endpoints).toEqual([]);
    await request(ta.app).post('/api/webhook-endpoints').send({ url: receiver.url, events: ['credits.granted'] }).expect(401);
  });
});

describe('deliveries', () => {
  it('a grant is delivered as a Standard Webhooks message the standardwebhooks library verifies', async () => {
    const { agent, user, endpoint, secret } = await registered();
    const before = receiver.requests.length;
    await fundAccount(ta.deps.ledger, user.id, 5_500);
    expect(await sender().runOnce()).toBeGreaterThanOrEqual(1);
    const got = receiver.requests.slice(before);
    expect(got).toHaveLength(1);
    const hook = got[0]!;
    const verified = new Webhook(secret).verify(hook.body, hook.headers as Record<string, string>) as { type: string; timestamp: string; data: Record<string, unknown> };
    expect(verified.type).toBe('credits.granted');
    expect(Number.isNaN(Date.parse(verified.timestamp))).toBe(false);
    expect(verified.data).toMatchObject({ kind: 'bonus', credits: 5.5, reason: 'test funding' });
    expect(hook.headers['webhook-id']).toMatch(/^msg_/);
    // A forged signature does not verify.
    expect(() => new Webhook(secret).verify(hook.body.replace('5.5', '55'), hook.headers as Record<string, string>)).toThrow();

    const deliveries = (await agent.get(`/api/webhook-endpoints/${endpoint.id}/deliveries`).expect(200)).body.deliveries;
    expect(deliveries).toHaveLength(1);
    expect(deliveries[0]).toMatchObject({ type: 'credits.granted', status: 'succeeded', attempts: 1, lastResponseCode: 200 });
    expect(deliveries[0].attemptLog).toEqual([expect.objectContaining({ status: 'succeeded', responseCode: 200, durationMs: expect.any(Number) })]);
  });

  it('retries after a 500 from the receiver, with backoff and the same message id, until it succeeds', async () => {
    const { agent, user, endpoint, secret } = await registered();
    receiver.respondWith(500, 503);
    const before = receiver.requests.length;
    await fundAccount(ta.deps.ledger, user.id, 1_000);
    await sender().runOnce();
    let [d] = (await agent.get(`/api/webhook-endpoints/${endpoint.id}/deliveries`).expect(200)).body.deliveries;
    expect(d).toMatchObject({ status: 'pending', attempts: 1, lastResponseCode: 500 });
    expect(new Date(d.nextAttemptAt).getTime()).toBeGreaterThan(clock().getTime());
    // Not due yet: no second request.
    await sender().runOnce();
    expect(receiver.requests.length - before).toBe(1);
    clock.advance(webhookRetryDelayMs(1) + 1000);
    await sender().runOnce();
    clock.advance(webhookRetryDelayMs(2) + 1000);
    await sender().runOnce();
    const got = receiver.requests.slice(before);
    expect(got).toHaveLength(3);
    expect(new Set(got.map((r) => r.headers['webhook-id'])).size).toBe(1);
    for (const r of got) new Webhook(secret).verify(r.body, r.headers as Record<string, string>);
    [d] = (await agent.get(`/api/webhook-endpoints/${endpoint.id}/deliveries`).expect(200)).body.deliveries;
    expect(d).toMatchObject({ status: 'succeeded', attempts: 3, lastResponseCode: 200 });
    expect(d.attemptLog.map((a: { responseCode: number }) => a.responseCode)).toEqual([500, 503, 200]);
    const ep = (await agent.get(`/api/webhook-endpoints/${endpoint.id}`).expect(200)).body.endpoint;
    expect(ep.failingSince).toBeNull();

    // A manual retry sends it again, same id.
    const retry = await agent.post(`/api/webhook-endpoints/${endpoint.id}/deliveries/${d.id}/retry`).send({}).expect(202);
    expect(retry.body.delivery.status).toBe('pending');
    await sender().runOnce();
    expect(receiver.requests.length - before).toBe(4);
    expect(receiver.requests.at(-1)!.headers['webhook-id']).toBe(got[0]!.headers['webhook-id']);
    const { agent: other } = await signedInUser(ta.app);
    await other.post(`/api/webhook-endpoints/${endpoint.id}/deliveries/${d.id}/retry`).send({}).expect(404);
  });

  it('an endpoint failing for 3 days is disabled and its owner emailed', async () => {
    const { agent, user, endpoint } = await registered(['credits.granted']);
    const failing = await startReceiver();
    try {
      await ta.t.db('webhook_endpoints').where({ id: endpoint.id }).update({ url: failing.url });
      failing.respondWith(...Array.from({ length: 50 }, () => 500));
      await fundAccount(ta.deps.ledger, user.id, 1_000);
      await sender().runOnce();
      expect((await agent.get(`/api/webhook-endpoints/${endpoint.id}`).expect(200)).body.endpoint).toMatchObject({ status: 'enabled', failingSince: expect.any(String) });
      for (let i = 0; i < 40; i++) {
        clock.advance(6 * 3_600_000);
        await sender().runOnce();
        if ((await ta.t.db('webhook_endpoints').where({ id: endpoint.id }).first()).status === 'disabled') break;
      }
      const ep = (await agent.get(`/api/webhook-endpoints/${endpoint.id}`).expect(200)).body.endpoint;
      expect(ep.status).toBe('disabled');
      expect(new Date(ep.failingSince).getTime()).toBeLessThanOrEqual(clock().getTime() - DISABLE_AFTER_MS);
      const mail = await ta.t.db('email_outbox').where({ user_id: user.id, type: 'webhook_endpoint_disabled' });
      expect(mail).toHaveLength(1);
      expect(mail[0].text_body).toContain(failing.url);
      // Disabled: no more deliveries, and a retry is refused.
      const n = failing.requests.length;
      await fundAccount(ta.deps.ledger, user.id, 1_000);
      clock.advance(86_400_000);
      await sender().runOnce();
      expect(failing.requests.length).toBe(n);
      const [d] = (await agent.get(`/api/webhook-endpoints/${endpoint.id}/deliveries`).expect(200)).body.deliveries;
      await agent.post(`/api/webhook-endpoints/${endpoint.id}/deliveries/${d.id}/retry`).send({}).expect(409);
    } finally {
      await failing.close();
    }
  });
});

describe('SSRF rules in production mode', () => {
  const resolver = (map: Record<string, string[]>) => async (host: string) => {
    const addrs = map[host];
    if (!addrs) throw new Error('ENOTFOUND');
    return addrs.map((address) => ({ address, family: address.includes(':') ? 6 : 4 }));
  };

  it('refuses http, loopback, private, link-local and names resolving to them; accepts a public https host', async () => {
    const user = await buildUser(ta.t.db);
    const service = createWebhookService({
      db: ta.t.db,
      production: true,
      resolve: resolver({ 'hooks.example.com': ['93.184.215.14'], localhost: ['127.0.0.1', '::1'], 'sneaky.example.com': ['93.184.215.14', '10.0.0.7'], 'v6.example.com': ['fe80::1'] }),
    });
    const refused = [
      'http://hooks.example.com/x',
      'https://127.0.0.1/x',
      'https://localhost/x',
      'https://10.1.2.3/x',
      'https://172.16.0.1/x',
      'https://192.168.1.1/x',
      'https://169.254.169.254/latest/meta-data',
      'https://[::1]/x',
      'https://[::ffff:127.0.0.1]/x',
      'https://sneaky.example.com/x',
      'https://v6.example.com/x',
      'https://nowhere.example.com/x',
      'https://user:pass@hooks.example.com/x',
    ];
    for (const url of refused) {
      await expect(service.createEndpoint(user.id, { url, events: ['credits.granted'] }), url).rejects.toMatchObject({ status: 400, errors: [{ field: 'body.url' }] });
    }
    const ok = await service.createEndpoint(user.id, { url: 'https://hooks.example.com/x', events: ['credits.granted'] });
    expect(ok.endpoint.url).toBe('https://hooks.example.com/x');
    expect(await ta.t.db('webhook_endpoints').where({ user_id: user.id }).count({ n: '*' })).toEqual([{ n: 1 }]);
  });

  it('checks the resolved address again at delivery: a name that now resolves to a private address is not contacted', async () => {
    const user = await buildUser(ta.t.db);
    const dns: Record<string, string[]> = { 'rebind.example.com': ['93.184.215.14'] };
    const resolve = resolver(dns);
    const service = createWebhookService({ db: ta.t.db, production: true, resolve });
    const { endpoint } = await service.createEndpoint(user.id, { url: 'https://rebind.example.com/hook', events: ['credits.granted'] });
    dns['rebind.example.com'] = ['127.0.0.1'];
    await service.emit(ta.t.db, user.id, 'credits.granted', { credits: 1 }, `rebind:${user.id}`);
    const prodSender = createWebhookSender({ db: ta.t.db, logger: ta.deps.logger, production: true, pollMs: 1000, resolve, clock: manualClock() });
    await prodSender.runOnce();
    const [d] = await service.listDeliveries(user.id, endpoint.id);
    expect(d!.status).toBe('pending');
    expect(d!.attemptLog).toEqual([expect.objectContaining({ status: 'failed', responseCode: null, error: expect.stringContaining('127.0.0.1') })]);
  });

  it('classifies addresses', () => {
    for (const a of ['127.0.0.1', '10.0.0.1', '100.64.0.1', '169.254.1.1', '::1', 'fc00::1', 'fe80::1', '::ffff:192.168.0.1', '0.0.0.0']) expect(isBlockedAddress(a), a).toBe(true);
    for (const a of ['93.184.215.14', '8.8.8.8', '2606:4700:4700::1111']) expect(isBlockedAddress(a), a).toBe(false);
  });

  it('development allows http://127.0.0.1 so it can be tried locally', async () => {
    const user = await buildUser(ta.t.db);
    const dev = createWebhookService({ db: ta.t.db, production: false });
    await expect(dev.createEndpoint(user.id, { url: 'http://127.0.0.1:8080/hook', events: ['balance.low'] })).resolves.toBeDefined();
  });
});
