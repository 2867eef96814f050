import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inTransaction } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import { emailRetryDelayMs } from '../../src/notifications/email-sender.ts';
import { signedInAdmin, signedInUser } from '../auth/auth-helpers.ts';
import { buildUser } from '../helpers/factories.ts';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { payOnCheckoutPage, startStripeTestApp, type StripeTestApp } from '../helpers/stripe-app.ts';
import { manualClock, startSmtp, type TestSmtp } from './helpers.ts';

let app: StripeTestApp;
let ta: TestApp;
let emulator: StripeEmulatorServer;
let appUrl: string;
let smtp: TestSmtp;
const clock = manualClock();

beforeAll(async () => {
  smtp = await startSmtp();
  app = await startStripeTestApp({
    env: { SMTP_URL: smtp.url, MAIL_FROM: 'Tally <billing@tally.test>' },
    notify: { clock },
    retry: 'default',
  });
  ({ ta, emulator, appUrl } = app);
});
afterAll(async () => {
  await app.close();
  await smtp.close();
});

const sender = () => ta.deps.notifications.emailSender;
const outboxRows = (to: string) => ta.t.db('email_outbox').where({ to_address: to }).orderBy('created_at');

async function buyStarter(agent: request.Agent) {
  const checkout = await agent.post('/api/payments/checkout').send({ packageId: 'starter' }).expect(201);
  await payOnCheckoutPage(emulator, checkout.body.sessionId, '4242 4242 4242 4242', 'Buyer').expect(303);
  await emulator.emulator.deliverDue();
  return checkout.body.paymentId as string;
}

describe('the SMTP path, end to end', () => {
  it('a purchase writes one receipt that a real SMTP server receives once, text and HTML with the same data', async () => {
    const { agent, user } = await signedInUser(ta.app, { name: 'Rita Receipt' });
    const paymentId = await buyStarter(agent);
    // The success page fulfills again: still one receipt.
    await agent.get('/api/payments').expect(200);
    const rows = await ta.t.db('email_outbox').where({ to_address: user.email, type: 'receipt' });
    expect(rows).toHaveLength(1);
    expect(rows[0].status).toBe('pending');

    const before = smtp.received.length;
    expect(await sender().runOnce()).toBeGreaterThanOrEqual(1);
    expect(await sender().runOnce()).toBe(0);
    const mails = smtp.received.slice(before).filter((m) => m.to && JSON.stringify(m.to).includes(user.email));
    const receipt = mails.find((m) => m.subject?.startsWith('Your Tally receipt'))!;
    expect(receipt).toBeDefined();
    expect(mails.filter((m) => m.subject === receipt.subject)).toHaveLength(1);
    expect(receipt.from?.value[0]).toMatchObject({ name: 'Tally', address: 'billing@tally.test' });
    expect(receipt.subject).toBe('Your Tally receipt: Starter ($5.00)');
    for (const body of [receipt.text!, receipt.html as string]) {
      expect(body).toContain('Rita Receipt');
      expect(body).toContain('Starter');
      expect(body).toContain('100');
      expect(body).toContain('$5.00');
      expect(body).toContain('Visa ending in 4242');
      expect(body).toContain(`${appUrl}/account/payments/${paymentId}`);
    }
    const sent = (await outboxRows(user.email)).find((r) => r.type === 'receipt');
    expect(sent).toMatchObject({ status: 'sent', attempts: 1 });
    expect(sent.sent_at).toBeInstanceOf(Date);
    // The sign-up's verification email went out through the same pipeline.
    expect(mails.some((m) => m.subject === 'Confirm your email address for Tally')).toBe(true);
  });

  it('a temporary SMTP failure is retried with backoff; a permanent one fails the message for good', async () => {
    const user = await buildUser(ta.t.db, { name: 'Tom Temp' });
    const outbox = ta.deps.notifications.outbox;
    await outbox.enqueue(ta.t.db, { type: 'password_changed', to: user.email, userId: user.id, data: { name: user.name, when: 'now', forgotUrl: 'x' } });
    smtp.rejectNext(1, 451);
    await sender().runOnce();
    let [row] = await outboxRows(user.email);
    expect(row).toMatchObject({ status: 'pending', attempts: 1 });
    expect(row.last_error).toContain('451');
    expect(row.next_attempt_at.getTime()).toBeGreaterThanOrEqual(clock().getTime() + emailRetryDelayMs(1) - 1000);
    // Not due yet: nothing happens.
    await sender().runOnce();
    expect((await outboxRows(user.email))[0].attempts).toBe(1);
    clock.advance(emailRetryDelayMs(1) + 1000);
    await sender().runOnce();
    [row] = await outboxRows(user.email);
    expect(row).toMatchObject({ status: 'sent', attempts: 2 });
    expect(smtp.received.filter((m) => m.to && JSON.stringify(m.to).includes(user.email))).toHaveLength(1);

    const other = await buildUser(ta.t.db);
    await outbox.enqueue(ta.t.db, { type: 'password_changed', to: other.email, userId: other.id, data: { name: other.name, when: 'now', forgotUrl: 'x' } });
    smtp.rejectNext(1, 550);
    await sender().runOnce();
    [row] = await outboxRows(other.email);
    expect(row).toMatchObject({ status: 'failed', attempts: 1 });
    expect(row.last_error).toContain('550');
  });

  it('two senders running at once hand each message to the server once (SKIP LOCKED claims)', async () => {
    const users = await Promise.all(Array.from({ length: 12 }, () => buildUser(ta.t.db)));
    const outbox = ta.deps.notifications.outbox;
    for (const u of users) await outbox.enqueue(ta.t.db, { type: 'password_changed', to: u.email, userId: u.id, data: { name: u.name, when: 'now', forgotUrl: 'x' } });
    const { createEmailSender } = await import('../../src/notifications/email-sender.ts');
    const senders = [1, 2, 3].map(() => createEmailSender({ db: ta.t.db, config: ta.deps.config, logger: ta.deps.logger, clock }));
    const counts = await Promise.all(senders.map((s) => s.runOnce()));
    await Promise.all(senders.map((s) => s.stop()));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(12);
    for (const u of users) expect(smtp.received.filter((m) => JSON.stringify(m.to).includes(u.email))).toHaveLength(1);
  });

  it('a message whose sender died mid-send is failed, never sent a second time', async () => {
    const user = await buildUser(ta.t.db);
    const row = await ta.deps.notifications.outbox.enqueue(ta.t.db, { type: 'password_changed', to: user.email, userId: user.id, data: { name: user.name, when: 'now', forgotUrl: 'x' } });
    await ta.t.db('email_outbox').where({ id: row!.id }).update({ status: 'sending', attempts: 1, lease_until: new Date(clock().getTime() - 1000) });
    await sender().runOnce();
    const after = await ta.t.db('email_outbox').where({ id: row!.id }).first();
    expect(after.status).toBe('failed');
    expect(after.last_error).toContain('never sent twice');
    expect(smtp.received.filter((m) => JSON.stringify(m.to).includes(user.email))).toHaveLength(0);
  });
});

describe('outbox atomicity', () => {
  it('a grant rolled back with its transaction leaves no email, notification or webhook delivery', async () => {
    const { agent, user } = await signedInUser(ta.app);
    await agent.post('/api/webhook-endpoints').send({ url: 'http://127.0.0.1:9/hook', events: ['credits.granted', 'balance.low'] }).expect(201);
    const counts = async () => ({
      emails: Number((await ta.t.db('email_outbox').where({ user_id: user.id }).count({ n: '*' }))[0]!.n),
      notifications: Number((await ta.t.db('notifications').where({ user_id: user.id }).count({ n: '*' }))[0]!.n),
      deliveries: Number((await ta.t.db('webhook_deliveries').count({ n: '*' }))[0]!.n),
    });
    await sender().runOnce(); // the sign-up's verification email goes now
    const before = await counts();
    const sentBefore = smtp.received.length;
    await expect(
      inTransaction(ta.t.db, async (trx) => {
        await ta.deps.ledger.grant({ transferId: `rollback:${user.id}`, userId: user.id, millicredits: 100_000, kind: 'purchase', actor: 'test', reason: 'rolled back' }, trx);
        // Spend below every threshold in the same transaction: a low-balance alert would be written…
        await ta.deps.ledger.debit({ transferId: `rollback-spend:${user.id}`, userId: user.id, millicredits: 105_000, kind: 'usage', actor: 'test' }, trx);
        expect((await trx('webhook_deliveries').count({ n: '*' }))[0]!.n).not.toBe(String(before.deliveries));
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    // …and nothing of it survives the rollback.
    expect(await counts()).toEqual(before);
    await sender().runOnce();
    expect(smtp.received.slice(sentBefore).filter((m) => JSON.stringify(m.to).includes(user.email))).toHaveLength(0);
  });
});

describe('without SMTP_URL', () => {
  it('messages stay in the outbox marked "not sent: no SMTP configured", readable at /admin/emails and the API', async () => {
    const dev = await buildTestApp();
    try {
      const { user } = await signedInUser(dev.app, { name: 'Nadia NoSmtp' });
      const row = await dev.t.db('email_outbox').where({ to_address: user.email }).first();
      expect(row).toMatchObject({ type: 'email_verification', status: 'not_sent', last_error: 'not sent: no SMTP configured' });
      expect(await dev.deps.notifications.emailSender.runOnce()).toBe(0);

      const { agent: admin } = await signedInAdmin(dev.app, dev.t.db);
      const api = await admin.get(`/api/admin/emails?to=${encodeURIComponent(user.email.toUpperCase())}&type=email_verification`).expect(200);
      expect(api.body.emails).toHaveLength(1);
      expect(api.body.emails[0]).toMatchObject({ to: user.email, type: 'email_verification', status: 'not_sent', lastError: 'not sent: no SMTP configured' });
      expect(api.body.emails[0].text).toContain('/verify-email?token=');
      expect((await admin.get(`/api/admin/emails?type=receipt&to=${encodeURIComponent(user.email)}`).expect(200)).body.emails).toEqual([]);
      const bad = await admin.get('/api/admin/emails?type=nonsense').expect(400);
      expect(bad.body.errors[0].field).toBe('query.type');

      const page = await admin.get(`/admin/emails?to=${encodeURIComponent(user.email)}`).expect(200);
      expect(page.text).toContain('Confirm your email address for Tally');
      expect(page.text).toContain('Not sent');
      expect(page.text).toContain('not sent: no SMTP configured');
      const one = await admin.get(`/admin/emails/${api.body.emails[0].id}`).expect(200);
      expect(one.text).toContain('Nadia NoSmtp');
      expect(one.text).not.toContain(user.id);

      const { agent: someone } = await signedInUser(dev.app);
      await someone.get('/api/admin/emails').expect(403);
    } finally {
      await dev.close();
    }
  });
});

describe('payment events', () => {
  it('a refund emails one notice and sends payment.succeeded, credits.granted and payment.refunded webhooks', async () => {
    const { startReceiver } = await import('./helpers.ts');
    const { Webhook } = await import('standardwebhooks');
    const receiver = await startReceiver();
    try {
      const { agent, user } = await signedInUser(ta.app);
      const hook = await agent.post('/api/webhook-endpoints').send({ url: receiver.url, events: ['payment.succeeded', 'payment.refunded', 'credits.granted'] }).expect(201);
      const paymentId = await buyStarter(agent);
      const { agent: boss } = await signedInAdmin(ta.app, ta.t.db);
      await boss.post(`/api/admin/payments/${paymentId}/refunds`).send({ amountCents: 200 }).expect(201);
      await emulator.emulator.deliverDue();
      const refunds = await ta.t.db('email_outbox').where({ user_id: user.id, type: 'refund' });
      expect(refunds).toHaveLength(1);
      expect(refunds[0].subject).toBe('Refund of $2.00 for Starter');
      expect(refunds[0].text_body).toContain('40 credits were taken back');
      await ta.deps.notifications.webhookSender.runOnce();
      const events = receiver.requests.map((r) => new Webhook(hook.body.secret).verify(r.body, r.headers as Record<string, string>) as { type: string; data: Record<string, unknown> });
      expect(events.map((e) => e.type).sort()).toEqual(['credits.granted', 'payment.refunded', 'payment.succeeded']);
      expect(events.find((e) => e.type === 'payment.succeeded')!.data).toMatchObject({ paymentId, credits: 100, amountCents: 500, currency: 'usd', card: { brand: 'visa', last4: '4242' } });
      expect(events.find((e) => e.type === 'payment.refunded')!.data).toMatchObject({ paymentId, refundedCents: 200, totalRefundedCents: 200, creditsClawedBack: 40, status: 'partially_refunded' });
      const titles = (await agent.get('/api/notifications').expect(200)).body.notifications.map((n: { title: string }) => n.title);
      expect(titles).toEqual(expect.arrayContaining(['Payment received', 'Refund issued']));
    } finally {
      await receiver.close();
    }
  });
});
