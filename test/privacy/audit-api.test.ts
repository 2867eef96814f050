import crypto from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InsufficientCreditsError } from '../../src/ledger/ledger-errors.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { signedInAdmin, signedInUser, type Agent } from '../auth/auth-helpers.ts';

let t: TestApp;
let admin: Agent;
let adminId: string;
let user: { id: string; email: string };
beforeAll(async () => {
  t = await buildTestApp();
  const a = await signedInAdmin(t.app, t.t.db);
  admin = a.agent;
  adminId = a.user.id;
  user = (await signedInUser(t.app, { name: 'Audited Ann' })).user;
});
afterAll(async () => t.close());

/** Parses a JSONL body (supertest buffers it as text). */
const lines = (text: string) => text.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);

describe('what the audit log records', () => {
  it("records an admin's read of a user's data, page and API", async () => {
    expect((await admin.get(`/api/admin/users/${user.id}`)).status).toBe(200);
    expect((await admin.get(`/admin/users/${user.id}`).set('Accept', 'text/html')).status).toBe(200);
    const res = await admin.get('/api/admin/audit').query({ action: 'admin.user_viewed', target: user.email });
    expect(res.status).toBe(200);
    expect(res.body.entries).toHaveLength(2);
    expect(res.body.entries[0]).toMatchObject({ actorUserId: adminId, target: { type: 'user', id: user.id } });
  });

  it('records a refusal for lack of credits with what was needed, and each credit change with its transfer id', async () => {
    const holdId = `test-hold:${crypto.randomUUID()}`;
    await expect(
      t.deps.ledger.reserve({ holdId, userId: user.id, millicredits: 99_000_000, timeoutMs: 60_000, actor: `user:${user.id}`, reference: { type: 'test', id: '1' } }),
    ).rejects.toBeInstanceOf(InsufficientCreditsError);
    const refused = await admin.get('/api/admin/audit').query({ action: 'credits.refused', target: `user:${user.id}` });
    expect(refused.body.entries).toHaveLength(1);
    expect(refused.body.entries[0].details).toMatchObject({ code: 'insufficient_credits', requiredMillicredits: 99_000_000, availableMillicredits: 10_000, reference: 'test:1' });

    const grant = await admin.post(`/api/admin/users/${user.id}/grants`).send({ credits: 3, reason: 'audit me' });
    expect(grant.status).toBe(201);
    const moved = await admin.get('/api/admin/audit').query({ action: 'ledger.', target: user.email });
    const ids = moved.body.entries.map((e: { details: { transferId: string } }) => e.details.transferId);
    expect(ids).toContain(grant.body.transfer.id);
    expect(ids).toContain(`signup_bonus:${user.id}`);
    expect(moved.body.entries.find((e: { details: { transferId: string } }) => e.details.transferId === grant.body.transfer.id)).toMatchObject({
      actorUserId: adminId,
      details: { kind: 'bonus', amount: 3000, debitAccount: 'promotions', creditAccount: 'user' },
    });
  });

  it('records job attempts, a success and a failure from the tasks table', async () => {
    const task = async () => {
      const id = crypto.randomUUID();
      await t.t.db('tasks').insert({
        id, user_id: user.id, file_name: 'scan.png', kind: 'png', mime_type: 'image/png', size_bytes: 10, sha256: 'x', storage_key: `k/${id}`,
        pages: 1, estimated_millicredits: 1500, hold_id: `task:${id}`, job_id: crypto.randomUUID(),
      });
      return id;
    };
    const ok = await task();
    await t.t.db('tasks').where({ id: ok }).update({ status: 'processing', attempts: 1 });
    await t.t.db('tasks').where({ id: ok }).update({ status: 'completed', charged_millicredits: 1500, completed_at: new Date() });
    const bad = await task();
    await t.t.db('tasks').where({ id: bad }).update({ status: 'processing', attempts: 1 });
    await t.t.db('tasks').where({ id: bad }).update({ attempts: 2 });
    await t.t.db('tasks').where({ id: bad }).update({ status: 'failed', error_code: 'processing_error', completed_at: new Date() });
    const okEntries = (await admin.get('/api/admin/audit').query({ action: 'job.', target: `task:${ok}` })).body.entries.map((e: { action: string }) => e.action);
    const badEntries = (await admin.get('/api/admin/audit').query({ action: 'job.', target: `task:${bad}` })).body.entries.map((e: { action: string }) => e.action);
    expect(okEntries).toEqual(['job.succeeded', 'job.attempt']);
    expect(badEntries).toEqual(['job.failed', 'job.attempt', 'job.attempt']);
  });
});

describe('GET /api/admin/audit filters and the JSONL export', () => {
  it('filters by date range; a bad date is a 400 naming the field', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const all = await admin.get('/api/admin/audit').query({ from: today, to: today, limit: 500 });
    expect(all.status).toBe(200);
    expect(all.body.entries.length).toBeGreaterThan(3);
    const none = await admin.get('/api/admin/audit').query({ to: '2000-01-01' });
    expect(none.body.entries).toEqual([]);
    const bad = await admin.get('/api/admin/audit').query({ from: '30/11/2026' });
    expect(bad.status).toBe(400);
    expect(bad.body.errors[0].field).toBe('query.from');
  });

  it('streams JSON Lines, oldest first, each with its hash linked to the one before; the export itself is audited', async () => {
    const res = await admin.get('/api/admin/audit/export').buffer(true).parse((r, cb) => {
      let s = '';
      r.on('data', (c: Buffer) => (s += c.toString('utf8')));
      r.on('end', () => cb(null, s));
    });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    expect(res.headers['content-disposition']).toMatch(/attachment; filename="tally-audit-/);
    const entries = lines(res.body as string);
    expect(entries.length).toBeGreaterThan(5);
    for (let i = 1; i < entries.length; i++) {
      expect(Number(entries[i]!.seq)).toBe(Number(entries[i - 1]!.seq) + 1);
      expect(entries[i]!.prevHash).toBe(entries[i - 1]!.hash);
    }
    expect(entries.at(-1)).toMatchObject({ action: 'admin.audit_exported', actorUserId: adminId });
    const userOnly = await admin.get('/api/admin/audit/export').query({ from: '2000-01-01', to: '2000-01-02' });
    expect(userOnly.status).toBe(200);
    expect(await request(t.app).get('/api/admin/audit/export').then((r) => r.status)).toBe(401);
  });

  it('the /admin/audit page filters by target and date, and links to the export', async () => {
    const today = new Date().toISOString().slice(0, 10);
    const page = await admin.get('/admin/audit').query({ target: user.email, from: today, to: today }).set('Accept', 'text/html');
    expect(page.status).toBe(200);
    expect(page.text).toContain("Viewed a user&#39;s data");
    expect(page.text).toContain(`/api/admin/audit/export?target=${encodeURIComponent(user.email)}`);
    expect(page.text).not.toContain('admin.user_viewed<');
  });
});
