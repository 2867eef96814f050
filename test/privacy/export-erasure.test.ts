import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditChain } from '../../src/auth/audit-store.ts';
import { createPrivacyService, ERASURE_GRACE_MS } from '../../src/privacy/privacy-service.ts';
import { StoredFileMissingError } from '../../src/tasks/file-storage.ts';
import { signedInAdmin, signedInUser, type Agent } from '../auth/auth-helpers.ts';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import type Stripe from 'stripe';
import type { TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';
import { payOnCheckoutPage, startStripeTestApp, type StripeTestApp } from '../helpers/stripe-app.ts';
import { finishedTask, readZip } from './helpers.ts';

let app: StripeTestApp;
let ta: TestApp;
let emulator: StripeEmulatorServer;
let stripe: Stripe;
let admin: Agent;

beforeAll(async () => {
  app = await startStripeTestApp();
  ({ ta, emulator, stripe } = app);
  admin = (await signedInAdmin(ta.app, ta.t.db)).agent;
});
afterAll(async () => {
  await app.close();
});

/** Buffers a binary response (supertest). */
const binary = (res: request.Response, cb: (err: Error | null, body: Buffer) => void) => {
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => cb(null, Buffer.concat(chunks)));
};

async function subscribe(agent: Agent) {
  const checkout = await agent.post('/api/subscriptions/checkout').set('Accept', 'application/json').send({ planId: 'pro' }).expect(201);
  await payOnCheckoutPage(emulator, checkout.body.sessionId, '4242 4242 4242 4242', 'Subscriber').expect(303);
  await emulator.emulator.deliverDue();
}

describe('data export (GDPR Art. 15)', () => {
  it('202, one at a time (409), built in the background into a ZIP with the task text and file, emailed with a 24-hour link', async () => {
    const { agent, user } = await signedInUser(ta.app, { name: 'Exporting Eve' });
    const task = await finishedTask(ta.deps, user.id, { fileName: 'receipt scan.png', text: 'Invoice 4711 from the bakery' });

    const first = await agent.post('/api/account/exports');
    expect(first.status).toBe(202);
    expect(first.body.export).toMatchObject({ status: 'pending', links: { download: null } });
    expect(first.headers.location).toBe(`/api/account/exports/${first.body.export.id}`);
    const second = await agent.post('/api/account/exports');
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('export_in_progress');

    expect(await ta.deps.privacy.buildExports()).toBe(1);
    const got = await agent.get(`/api/account/exports/${first.body.export.id}`).expect(200);
    expect(got.body.export.status).toBe('ready');
    const hours = (Date.parse(got.body.export.expiresAt) - Date.parse(got.body.export.readyAt)) / 3_600_000;
    expect(hours).toBe(24);

    const [mail] = await ta.t.db('email_outbox').where({ user_id: user.id, type: 'account_export_ready' });
    expect(mail.to_address).toBe(user.email);
    expect(mail.text_body).toContain(`/account/privacy/exports/${first.body.export.id}/download`);

    const other = await signedInUser(ta.app);
    expect((await other.agent.get(`/api/account/exports/${first.body.export.id}`)).status).toBe(404);
    expect((await other.agent.get(`/api/account/exports/${first.body.export.id}/download`)).status).toBe(404);

    const dl = await agent.get(got.body.export.links.download).buffer(true).parse(binary).expect(200);
    expect(dl.headers['content-type']).toBe('application/zip');
    const zip = await readZip(dl.body as Buffer);
    const names = [...zip.keys()];
    expect(names).toEqual(expect.arrayContaining(['profile.json', 'sessions.json', 'transfers.json', 'lots.json', 'holds.json', 'payments.json', 'refunds.json', 'tasks.json', 'audit.json', 'notification-settings.json', 'README.txt']));
    const text = names.find((n) => n.startsWith('results/') && n.endsWith('.txt'))!;
    expect(zip.get(text)!.toString('utf8')).toBe('Invoice 4711 from the bakery');
    const original = names.find((n) => n.startsWith('files/'))!;
    expect(original).toContain('receipt scan.png');
    expect(zip.get(original)!.equals(task.bytes)).toBe(true);
    expect(JSON.parse(zip.get('profile.json')!.toString())).toMatchObject({ email: user.email, name: 'Exporting Eve' });
    expect(zip.get('profile.json')!.toString()).not.toContain('password');
    const transfers = JSON.parse(zip.get('transfers.json')!.toString()) as Array<{ id: string }>;
    expect(transfers.map((t) => t.id)).toContain(`signup_bonus:${user.id}`);
    const audit = JSON.parse(zip.get('audit.json')!.toString()) as Array<{ action: string }>;
    expect(audit.map((a) => a.action)).toEqual(expect.arrayContaining(['auth.signup', 'ledger.transfer', 'privacy.export_requested']));

    // after 24 hours the link is gone (410), and the retention sweep deletes the file
    const later = createPrivacyService({ ...ta.deps, outbox: ta.deps.notifications.outbox, clock: () => new Date(Date.now() + 25 * 3_600_000) });
    await expect(later.openDownload(user as never, first.body.export.id, { ip: null, userAgent: null })).rejects.toMatchObject({ status: 410 });
    expect((await later.sweepRetention()).exports).toBeGreaterThanOrEqual(1);
    expect((await ta.t.db('account_exports').where({ id: first.body.export.id }).first()).status).toBe('expired');
  });

  it('the /account/privacy page asks for an export and lists it', async () => {
    const { agent } = await signedInUser(ta.app);
    const page = await agent.get('/account/privacy').expect(200);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(page.text)![1]!;
    await agent.post('/account/privacy/exports').type('form').send({ _csrf: csrf }).expect(303);
    const after = await agent.get('/account/privacy').expect(200);
    expect(after.text).toContain('We are preparing your data');
    expect(after.text).toMatch(/Waiting|Being prepared/);
  });
});

describe('erasure (GDPR Art. 17)', () => {
  it('asks for the password, schedules in 7 days, can be cancelled; the grace period is counted on the injected clock', async () => {
    const { agent, user, password } = await signedInUser(ta.app);
    const wrong = await agent.post('/api/account/deletion').send({ password: 'not it at all' });
    expect(wrong.status).toBe(400);
    expect(wrong.body.errors[0].field).toBe('body.password');
    const ok = await agent.post('/api/account/deletion').send({ password }).expect(202);
    const days = (Date.parse(ok.body.deletion.scheduledFor) - Date.parse(ok.body.deletion.requestedAt)) / 86_400_000;
    expect(days).toBe(7);

    const sixDays = createPrivacyService({ ...ta.deps, outbox: ta.deps.notifications.outbox, clock: () => new Date(Date.now() + 6 * 86_400_000) });
    expect(await sixDays.runDueErasures()).toBe(0);
    await agent.delete('/api/account/deletion').expect(204);
    await agent.delete('/api/account/deletion').expect(404);
    const eightDays = createPrivacyService({ ...ta.deps, outbox: ta.deps.notifications.outbox, clock: () => new Date(Date.now() + ERASURE_GRACE_MS + 86_400_000) });
    expect(await eightDays.runDueErasures()).toBe(0); // cancelled: nothing happens

    await agent.post('/api/account/deletion').send({ password }).expect(202);
    expect(await eightDays.runDueErasures()).toBe(1);
    const row = await ta.t.db('users').where({ id: user.id }).first();
    expect(row.email).toMatch(/^erased-[0-9a-f]{12}@erased\.invalid$/);
    expect((await agent.get('/api/credits/balance')).status).toBe(401);
  });

  it('an admin erases at once: sessions, holds, credits (forfeited, books balanced), Stripe, files and email all gone; ledger and payments stay', async () => {
    const { agent, user } = await signedInUser(ta.app, { name: 'Erased Ernie' });
    await subscribe(agent);
    const before = await agent.get('/api/credits/balance').expect(200);
    expect(before.body.available).toBe(1010);
    await ta.deps.ledger.reserve({ holdId: `test:${user.id}`, userId: user.id, millicredits: 2000, timeoutMs: 3_600_000, actor: `user:${user.id}` });
    const task = await finishedTask(ta.deps, user.id, { text: 'my secret diary' });
    const sub = await ta.t.db('subscriptions').where({ user_id: user.id }).first();
    const forfeitedBefore = (await ta.t.db('accounts').where({ code: 'forfeited' }).first()) as { id: string };
    const creditsBefore = Number((await ta.t.db('transfers').where({ credit_account_id: forfeitedBefore.id }).sum('amount as s'))[0]!.s ?? 0);

    const noReason = await admin.post(`/api/admin/users/${user.id}/erasure`).send({ reason: '' });
    expect(noReason.status).toBe(400);
    expect(noReason.body.errors[0].field).toBe('body.reason');
    const res = await admin.post(`/api/admin/users/${user.id}/erasure`).send({ reason: 'Erasure request by email, ticket 42' });
    expect(res.status).toBe(200);
    expect(res.body.deletion.status).toBe('erased');

    // signed out; the account's email, name and password are gone
    expect((await agent.get('/api/credits/balance')).status).toBe(401);
    const row = await ta.t.db('users').where({ id: user.id }).first();
    expect(row).toMatchObject({ email: `${res.body.pseudonym}@erased.invalid`, name: 'Erased user' });
    // holds voided, credits forfeited through the ledger; the books balance
    expect((await ta.t.db('holds').where({ id: `test:${user.id}` }).first()).status).toBe('voided');
    expect((await ta.deps.ledger.getBalance(user.id)).available).toBe(0);
    const creditsAfter = Number((await ta.t.db('transfers').where({ credit_account_id: forfeitedBefore.id }).sum('amount as s'))[0]!.s);
    expect(creditsAfter - creditsBefore).toBe(1_010_000);
    expect(await booksViolations(ta.t.db)).toEqual([]);
    // Stripe: subscription cancelled, customer deleted
    expect((await stripe.subscriptions.retrieve(sub.stripe_subscription_id)).status).toBe('canceled');
    expect(await stripe.customers.retrieve(sub.stripe_customer_id)).toMatchObject({ deleted: true });
    // files and results deleted; the task row stays for the ledger
    await expect(ta.deps.storage.read(task.key)).rejects.toBeInstanceOf(StoredFileMissingError);
    expect(await ta.t.db('tasks').where({ id: task.id }).first()).toMatchObject({ result_text: null, file_name: 'erased' });
    // the email is nowhere: users, outbox, audit personal data, sign-up claims, the emulator's customers
    const dump = JSON.stringify(
      await Promise.all([
        ta.t.db('users').select('*'),
        ta.t.db('email_outbox').select('*'),
        ta.t.db('audit_personal').select('payload'),
        ta.t.db('audit_log').select('details'),
        ta.t.db('signup_bonus_claims').select('*'),
        ta.t.db('auth_tokens').select('*'),
        ta.t.db.raw('SELECT * FROM stripe_emulator.customers'),
        ta.t.db('session').select('*'),
      ]),
    );
    expect(dump).not.toContain(user.email);
    expect(dump).not.toContain('Erased Ernie');
    expect((await request(ta.app).post('/api/auth/login').send({ email: user.email, password: 'correct-lamp-battery-42' })).status).toBe(401);
    // ledger and payment rows stay
    expect(await ta.t.db('transfers').where({ id: `signup_bonus:${user.id}` })).toHaveLength(1);
    expect(await ta.t.db('subscription_invoices').where({ subscription_id: sub.id })).not.toHaveLength(0);
    // audited, and the chain verifies (personal data erased from it)
    const audit = await admin.get('/api/admin/audit').query({ action: 'privacy.', target: `user:${user.id}` });
    expect(audit.body.entries.map((e: { action: string }) => e.action)).toContain('privacy.erased');
    expect(audit.body.entries.find((e: { action: string }) => e.action === 'privacy.erased').details.reason).toBe('Erasure request by email, ticket 42');
    await ta.deps.audit.seal();
    const chain = await verifyAuditChain(ta.t.db);
    expect(chain.firstBreak).toBeNull();
    expect(chain.erasedPersonal).toBeGreaterThan(0);

    // idempotent: again is the same answer and changes nothing
    const again = await admin.post(`/api/admin/users/${user.id}/erasure`).send({ reason: 'again' }).expect(200);
    expect(again.body.pseudonym).toBe(res.body.pseudonym);
    expect(await booksViolations(ta.t.db)).toEqual([]);
  });

  it('resumes after a crash half-way: the steps done are not repeated, the rest completes', async () => {
    const { user } = await signedInUser(ta.app);
    await finishedTask(ta.deps, user.id);
    let crash = true;
    const crashing = createPrivacyService({
      ...ta.deps,
      outbox: ta.deps.notifications.outbox,
      beforeErasureStep: (step) => {
        if (step === 'files_deleted' && crash) throw new Error('power cut');
      },
    });
    const adminUser = (await ta.t.db('users').where({ role: 'admin' }).first()) as { id: string; email: string; name: string; role: 'admin' };
    await expect(crashing.eraseNow(adminUser, user.id, 'test crash', { ip: null, userAgent: null })).rejects.toThrow('power cut');
    const half = await ta.t.db('account_deletions').where({ user_id: user.id }).first();
    expect(half).toMatchObject({ status: 'erasing', steps_done: ['sessions_revoked', 'holds_voided', 'credits_forfeited', 'stripe_cancelled'] });
    expect(half.last_error).toContain('files_deleted: power cut');
    expect((await ta.t.db('users').where({ id: user.id }).first()).email).toBe(user.email);

    crash = false;
    expect(await crashing.runDueErasures()).toBe(1);
    const done = await ta.t.db('account_deletions').where({ user_id: user.id }).first();
    expect(done.status).toBe('erased');
    expect(done.steps_done).toEqual(['sessions_revoked', 'holds_voided', 'credits_forfeited', 'stripe_cancelled', 'files_deleted', 'pseudonymised']);
    const forfeits = await ta.t.db('transfers').where('id', 'like', 'forfeit:%').whereIn('debit_account_id', ta.t.db('accounts').select('id').where({ user_id: user.id }));
    expect(forfeits).toHaveLength(1);
    expect((await ta.t.db('users').where({ id: user.id }).first()).email).toMatch(/@erased\.invalid$/);
    expect(await booksViolations(ta.t.db)).toEqual([]);
  });
});
