import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorker } from '../../src/compose.ts';
import { createLogger } from '../../src/logger.ts';
import type { TaskQueue } from '../../src/tasks/task-queue.ts';
import type { TaskWorker } from '../../src/tasks/task-worker.ts';
import { startQueue } from '../../src/tasks/tasks-runtime.ts';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { payOnCheckoutPage, startStripeTestApp, type StripeTestApp } from '../helpers/stripe-app.ts';
import { startReceiver, startSmtp, type TestReceiver, type TestSmtp } from '../notifications/helpers.ts';
import { signup, stubProcessor, tinyPng, upload, waitForTask } from '../tasks/tasks-helpers.ts';

const TOKEN = 'metrics-token-for-tests-0123456789';

/** Sample values of a Prometheus text exposition: `name{a="b",…}` → value. */
function parse(text: string): Map<string, number> {
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(\{.*\})? (\S+)$/.exec(line);
    if (m) samples.set(`${m[1]}${m[2] ?? ''}`, Number(m[3]));
  }
  return samples;
}

let app: StripeTestApp;
let ta: TestApp;
let emulator: StripeEmulatorServer;
let queue: TaskQueue;
let worker: TaskWorker;
let smtp: TestSmtp;
let receiver: TestReceiver;

async function scrape(): Promise<Map<string, number>> {
  const res = await request(ta.app).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(200);
  expect(res.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
  return parse(res.text);
}

beforeAll(async () => {
  smtp = await startSmtp();
  receiver = await startReceiver();
  app = await startStripeTestApp({
    env: { METRICS_TOKEN: TOKEN, SMTP_URL: smtp.url, MAIL_FROM: 'Tally <billing@tally.test>' },
    overrides: async (t, config) => {
      queue = await startQueue({ config, databaseUrl: t.url, logger: createLogger('silent', { pretty: false }), queue: { retryDelaySeconds: 0, pollingIntervalSeconds: 0.5 } });
      return { queue };
    },
  });
  ({ ta, emulator } = app);
  worker = await createWorker(ta.deps, { queue, createProcessor: () => stubProcessor() });
});

afterAll(async () => {
  await worker?.stop();
  await queue?.stop();
  await app?.close();
  await smtp?.close();
  await receiver?.close();
});

describe('GET /metrics', () => {
  it('is refused without the bearer token (401 problem+json) and answers with it', async () => {
    const none = await request(ta.app).get('/metrics').expect(401);
    expect(none.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(none.headers['www-authenticate']).toMatch(/^Bearer/);
    expect(none.body).toMatchObject({ status: 401, code: 'unauthorized' });
    await request(ta.app).get('/metrics').set('Authorization', `Bearer ${TOKEN}x`).expect(401);
    await request(ta.app).get('/metrics').set('Authorization', TOKEN).expect(401);
    const ok = await scrape();
    expect(ok.get('tally_holds_active')).toBe(0);
  });

  it('does not exist when METRICS_TOKEN is unset, and each app counts on its own registry', async () => {
    const other = await buildTestApp();
    try {
      await request(other.app).get('/metrics').set('Authorization', `Bearer ${TOKEN}`).expect(404);
      await request(other.app).get('/api/credits/packages').expect(200);
      expect(other.deps.metrics.registry).not.toBe(ta.deps.metrics.registry);
      const theirs = await other.deps.metrics.registry.getSingleMetricAsString('tally_http_request_duration_seconds');
      expect(theirs).toContain('route="/api/credits/packages"');
      expect(await ta.deps.metrics.registry.getSingleMetricAsString('tally_http_request_duration_seconds')).not.toContain('route="/api/credits/packages"');
    } finally {
      await other.close();
    }
  });

  it('moves its counters and gauges after a sign-up, a purchase, a job, an email and a webhook delivery', async () => {
    const before = await scrape();
    const at = (m: Map<string, number>, key: string) => m.get(key) ?? 0;

    // Sign-up (a grant), then an outbound webhook endpoint listening for grants.
    const { agent, userId } = await signup(ta.app);
    await agent.post('/api/webhook-endpoints').send({ url: receiver.url, events: ['credits.granted'] }).expect(201);

    // A purchase: checkout, paid on the emulator's page, fulfilled by the signed webhook.
    await agent.post('/api/payments/checkout').send({ packageId: 'no-such-pack' }).expect(400);
    const checkout = await agent.post('/api/payments/checkout').send({ packageId: 'starter' }).expect(201);
    await payOnCheckoutPage(emulator, checkout.body.sessionId, '4242 4242 4242 4242', 'Buyer').expect(303);
    expect(await emulator.emulator.deliverDue()).toBeGreaterThanOrEqual(1);
    await request(ta.app).post('/api/payments/webhook').set('Stripe-Signature', 't=1,v1=bad').send('{}').expect(400);

    // A job: uploaded, held, run by the worker, posted.
    const up = await upload(agent, await tinyPng('metrics'), 'scan.png').expect(202);
    expect((await waitForTask(agent, up.body.task.id)).status).toBe('completed');

    // The receipt email and the credits.granted webhook, delivered by their senders.
    expect(await ta.deps.notifications.emailSender.runOnce()).toBeGreaterThanOrEqual(1);
    expect(await ta.deps.notifications.webhookSender.runOnce()).toBeGreaterThanOrEqual(1);

    const after = await scrape();
    const moved = (key: string) => at(after, key) - at(before, key);
    expect(moved('tally_ledger_operations_total{kind="grant",outcome="ok"}')).toBeGreaterThanOrEqual(2); // sign-up bonus + purchase
    expect(moved('tally_ledger_operations_total{kind="reserve",outcome="ok"}')).toBe(1);
    expect(moved('tally_ledger_operations_total{kind="post",outcome="ok"}')).toBe(1);
    expect(moved('tally_payments_total{step="checkout",outcome="created"}')).toBe(1);
    expect(moved('tally_payments_total{step="checkout",outcome="validation_failed"}')).toBe(1);
    expect(moved('tally_stripe_webhook_events_total{outcome="fulfilled"}')).toBe(1);
    expect(moved('tally_stripe_webhook_events_total{outcome="invalid_signature"}')).toBe(1);
    expect(moved('tally_job_duration_seconds_count{outcome="completed"}')).toBe(1);
    expect(moved('tally_job_pages_total')).toBe(1);
    expect(moved('tally_job_pages_per_second_count')).toBe(1);
    expect(moved('tally_email_deliveries_total{outcome="sent"}')).toBeGreaterThanOrEqual(1);
    expect(moved('tally_webhook_deliveries_total{outcome="succeeded"}')).toBeGreaterThanOrEqual(1);
    expect(smtp.received.length).toBeGreaterThanOrEqual(1);
    expect(receiver.requests.length).toBeGreaterThanOrEqual(1);

    // Requests are labelled by route pattern and status, not by URL.
    expect(moved('tally_http_request_duration_seconds_count{method="POST",route="/api/payments/checkout",status="201"}')).toBe(1);
    expect(moved('tally_http_request_duration_seconds_count{method="POST",route="/api/payments/checkout",status="400"}')).toBe(1); // an error, still its route
    expect(moved('tally_http_request_duration_seconds_count{method="POST",route="/api/payments/webhook",status="400"}')).toBe(1);
    expect(at(after, 'tally_http_request_duration_seconds_count{method="GET",route="/api/tasks/:id",status="200"}')).toBeGreaterThanOrEqual(1);
    expect([...after.keys()].some((k) => k.includes(up.body.task.id))).toBe(false);

    // Gauges come from the database: what the user still has, by lot source; the job's hold is gone.
    const balance = (await agent.get('/api/credits/balance').expect(200)).body as { available: number; lots: Array<{ source: string; remaining: number }> };
    const outstanding = [...after.entries()].filter(([k]) => k.startsWith('tally_credits_outstanding{')).reduce((sum, [, v]) => sum + v, 0);
    expect(outstanding).toBeCloseTo(balance.available, 3);
    expect(after.get('tally_credits_outstanding{source="purchase"}')).toBeGreaterThan(0);
    expect(after.get('tally_holds_active')).toBe(0);
    expect(userId).toBeTruthy();
  });

  it('counts active holds and queued jobs while a job waits, and refusals by their code', async () => {
    await worker.stop(); // nothing takes jobs now
    const { agent, userId } = await signup(ta.app);
    const up = await upload(agent, await tinyPng('queued'), 'waiting.png').expect(202);
    const during = await scrape();
    expect(during.get('tally_holds_active')).toBe(1);
    expect(during.get('tally_holds_active_credits')).toBeGreaterThan(0);
    expect(during.get('tally_queue_jobs{queue="ocr",state="created"}')).toBeGreaterThanOrEqual(1);

    const refusedBefore = during.get('tally_ledger_operations_total{kind="debit",outcome="insufficient_credits"}') ?? 0;
    await expect(
      ta.deps.ledger.debit({ transferId: `metrics-overdraw-${userId}`, userId, millicredits: 10_000_000, kind: 'usage', actor: 'test' }),
    ).rejects.toThrow();
    const refused = await scrape();
    expect(refused.get('tally_ledger_operations_total{kind="debit",outcome="insufficient_credits"}')).toBe(refusedBefore + 1);
    expect(up.body.task.id).toBeTruthy();
  });
});
