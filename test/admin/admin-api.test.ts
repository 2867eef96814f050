import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAdmin } from '../../src/auth/ensure-admin.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';
import { GOOD_PASSWORD, signedInAdmin, signedInUser, type Agent, uniqueEmail } from '../auth/auth-helpers.ts';
import { auditLog } from '../helpers/audit.ts';

let t: TestApp;
let admin: Agent;
let adminId: string;
let user: { id: string; email: string };
let userAgent: Agent;
beforeAll(async () => {
  t = await buildTestApp();
  const a = await signedInAdmin(t.app, t.t.db);
  admin = a.agent;
  adminId = a.user.id;
  const u = await signedInUser(t.app, { name: 'Regular Reg' });
  user = u.user;
  userAgent = u.agent;
});
afterAll(async () => t.close());

describe('access', () => {
  it('non-admins get 403 on every /api/admin path, known or not; anonymous gets 401', async () => {
    for (const path of ['/api/admin/users', `/api/admin/users/${user.id}`, '/api/admin/audit', '/api/admin/ledger/check', '/api/admin/nope']) {
      expect((await userAgent.get(path)).status, path).toBe(403);
      expect((await request(t.app).get(path)).status, path).toBe(401);
    }
    const grant = await userAgent.post(`/api/admin/users/${user.id}/grants`).send({ credits: 1000, reason: 'self-service' });
    expect(grant.status).toBe(403);
    expect((await t.deps.ledger.getBalance(user.id)).available).toBe(10_000);
  });
});

describe('grants', () => {
  it('grants 25 credits with a reason; the user sees them and the reason in their history; audited', async () => {
    const res = await admin
      .post(`/api/admin/users/${user.id}/grants`)
      .set('User-Agent', 'admin-console/1.0')
      .send({ credits: 25, reason: 'Thanks for the bug report' });
    expect(res.status).toBe(201);
    expect(res.body.transfer).toMatchObject({ kind: 'bonus', amount: 25, reason: 'Thanks for the bug report', actor: `admin:${adminId}` });
    expect(res.body.lot).toMatchObject({ source: 'bonus', amount: 25, remaining: 25, expiresAt: null });
    expect(res.body.balance.available).toBe(35);

    const balance = await userAgent.get('/api/credits/balance');
    expect(balance.body.available).toBe(35);
    const history = await userAgent.get('/api/credits/transfers');
    expect(history.body.transfers[0]).toMatchObject({ kind: 'bonus', amount: 25, balanceAfter: 35, reason: 'Thanks for the bug report' });

    const [entry] = await auditLog(t.t.db).where({ action: 'admin.credits_granted', target_id: user.id });
    expect(entry).toMatchObject({ actor: `admin:${adminId}`, actor_user_id: adminId, target_type: 'user', user_agent: 'admin-console/1.0' });
    expect(entry.ip).toBeTruthy();
    expect(entry.details).toMatchObject({ credits: 25, reason: 'Thanks for the bug report', transferId: res.body.transfer.id });
    expect(await booksViolations(t.t.db)).toEqual([]);
  });

  it('honours Idempotency-Key: a retry grants once; the same key with another amount is 409', async () => {
    const { user: target } = await signedInUser(t.app);
    const send = (credits: number) =>
      admin.post(`/api/admin/users/${target.id}/grants`).set('Idempotency-Key', 'grant-abc-1').send({ credits, reason: 'Loyalty', expiresAt: '2099-01-31' });
    const [a, b] = await Promise.all([send(5), send(5)]);
    expect([a.status, b.status]).toEqual([201, 201]);
    expect(a.body.transfer.id).toBe(b.body.transfer.id);
    expect(a.body.transfer.id).toBe(`admin_grant:${adminId}:grant-abc-1`);
    expect(a.body.lot.expiresAt).toBe('2099-02-01T00:00:00.000Z'); // the end of Jan 31, UTC
    expect([a.headers['idempotent-replayed'], b.headers['idempotent-replayed']]).toContain('true');
    expect((await t.deps.ledger.getBalance(target.id)).available).toBe(15_000);
    expect(await t.t.db('audit_log').where({ action: 'admin.credits_granted', target_id: target.id })).toHaveLength(1);

    const conflict = await send(6);
    expect(conflict.status).toBe(409);
    expect((await t.deps.ledger.getBalance(target.id)).available).toBe(15_000);
  });

  it('refuses bad input, listing each field: unknown fields, too many decimals, zero, a past expiry, no reason', async () => {
    const res = await admin
      .post(`/api/admin/users/${user.id}/grants`)
      .send({ credits: 1.2345, expiresAt: '2001-01-01', kind: 'purchase', userId: adminId });
    expect(res.status).toBe(400);
    const fields = res.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['body.credits', 'body.reason', 'body.expiresAt', 'body.kind', 'body.userId']));
    for (const credits of [0, -5, '1e3', 'ten']) {
      const r = await admin.post(`/api/admin/users/${user.id}/grants`).send({ credits, reason: 'x' });
      expect(r.status, String(credits)).toBe(400);
      expect(r.body.errors.map((e: { field: string }) => e.field)).toContain('body.credits');
    }
  });

  it('answers 404 for an unknown or malformed user id', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid']) {
      expect((await admin.post(`/api/admin/users/${id}/grants`).send({ credits: 1, reason: 'x' })).status).toBe(404);
      expect((await admin.get(`/api/admin/users/${id}`)).status).toBe(404);
    }
  });
});

describe('adjustments', () => {
  it('a negative adjustment takes credits away, but never below zero available (402)', async () => {
    const { user: target } = await signedInUser(t.app);
    const minus = await admin.post(`/api/admin/users/${target.id}/adjustments`).send({ credits: -4.5, reason: 'Duplicate grant corrected' });
    expect(minus.status).toBe(201);
    expect(minus.body.transfer).toMatchObject({ kind: 'adjustment', amount: 4.5, reason: 'Duplicate grant corrected' });
    expect(minus.body.balance.available).toBe(5.5);

    const tooMuch = await admin.post(`/api/admin/users/${target.id}/adjustments`).send({ credits: -5.501, reason: 'Too far' });
    expect(tooMuch.status).toBe(402);
    expect(tooMuch.body).toMatchObject({ code: 'insufficient_credits', required: 5.501, available: 5.5 });
    expect((await t.deps.ledger.getBalance(target.id)).available).toBe(5500);

    const plus = await admin.post(`/api/admin/users/${target.id}/adjustments`).send({ credits: '2', reason: 'Goodwill' });
    expect(plus.status).toBe(201);
    expect(plus.body.balance.available).toBe(7.5);
    expect(plus.body.balance.lots.map((l: { source: string }) => l.source)).toContain('adjustment');

    const zero = await admin.post(`/api/admin/users/${target.id}/adjustments`).send({ credits: 0, reason: 'Nothing' });
    expect(zero.status).toBe(400);

    const history = (await admin.get(`/api/admin/users/${target.id}`)).body.transfers;
    expect(history.map((h: { amount: number }) => h.amount)).toEqual([2, -4.5, 10]);
    expect(history[0].actor).toBe(`admin:${adminId}`);
    expect(await t.t.db('audit_log').where({ action: 'admin.credits_adjusted', target_id: target.id })).toHaveLength(2);
    expect(await booksViolations(t.t.db)).toEqual([]);
  });
});

describe('users', () => {
  it('finds users by part of their email or name, newest first, page by page', async () => {
    const tag = `findme${Date.now()}`;
    const made = [];
    for (let i = 0; i < 3; i++) made.push((await signedInUser(t.app, { email: uniqueEmail(tag), name: `Person ${i}` })).user);
    const first = await admin.get('/api/admin/users').query({ query: tag.toUpperCase(), limit: 2 });
    expect(first.status).toBe(200);
    expect(first.body.users.map((u: { id: string }) => u.id)).toEqual([made[2]!.id, made[1]!.id]);
    expect(first.body.nextCursor).toBeTruthy();
    const second = await admin.get('/api/admin/users').query({ query: tag, limit: 2, cursor: first.body.nextCursor });
    expect(second.body.users.map((u: { id: string }) => u.id)).toEqual([made[0]!.id]);
    expect(second.body.nextCursor).toBeNull();

    const byName = await admin.get('/api/admin/users').query({ query: 'regular reg' });
    expect(byName.body.users.map((u: { id: string }) => u.id)).toEqual([user.id]);
    // LIKE wildcards are literal.
    expect((await admin.get('/api/admin/users').query({ query: '%' })).body.users).toEqual([]);
    expect((await admin.get('/api/admin/users').query({ cursor: 'garbage' })).status).toBe(400);
    expect((await admin.get('/api/admin/users').query({ role: 'admin' })).status).toBe(400);
  });

  it('shows one user: profile, balance with lots and holds, recent transfers', async () => {
    await t.deps.ledger.reserve({ holdId: `hold-${user.id}`, userId: user.id, millicredits: 1500, timeoutMs: 60_000, actor: 'system', reference: { type: 'task', id: 't1' } });
    const res = await admin.get(`/api/admin/users/${user.id}`);
    expect(res.status).toBe(200);
    expect(res.body.user).toMatchObject({ id: user.id, email: user.email, name: 'Regular Reg', role: 'user', lastLoginAt: expect.any(String) });
    expect(res.body.user).not.toHaveProperty('password_hash');
    expect(res.body.user).not.toHaveProperty('passwordHash');
    expect(res.body.balance.held).toBe(1.5);
    expect(res.body.balance.holds).toEqual([{ id: `hold-${user.id}`, amount: 1.5, expiresAt: expect.any(String), reason: null, reference: { type: 'task', id: 't1' } }]);
    expect(res.body.balance.lots.length).toBeGreaterThan(0);
    expect(res.body.transfers.length).toBeGreaterThan(0);
    await t.deps.ledger.void({ holdId: `hold-${user.id}`, actor: 'system' });
  });
});

describe('audit log', () => {
  it('lists entries newest first, filtered by actor (id, email or actor string) and action (exact or prefix)', async () => {
    const all = await admin.get('/api/admin/audit');
    expect(all.status).toBe(200);
    const ids = all.body.entries.map((e: { id: string }) => Number(e.id));
    expect(ids).toEqual([...ids].sort((a, b) => b - a));

    const byAction = await admin.get('/api/admin/audit').query({ action: 'admin.credits_granted' });
    expect(byAction.body.entries.length).toBeGreaterThan(0);
    for (const e of byAction.body.entries) expect(e.action).toBe('admin.credits_granted');

    const byPrefix = await admin.get('/api/admin/audit').query({ action: 'admin.' });
    for (const e of byPrefix.body.entries) expect(e.action.startsWith('admin.')).toBe(true);

    const byActorId = await admin.get('/api/admin/audit').query({ actor: user.id });
    expect(byActorId.body.entries.map((e: { action: string }) => e.action)).toContain('auth.signup');
    for (const e of byActorId.body.entries) expect(e.actorUserId).toBe(user.id);
    const byActorEmail = await admin.get('/api/admin/audit').query({ actor: user.email });
    expect(byActorEmail.body.entries).toEqual(byActorId.body.entries);
    const bySystem = await admin.get('/api/admin/audit').query({ actor: 'system', action: 'admin.user_created' });
    expect(bySystem.body.entries.length).toBeGreaterThan(0);

    const page1 = await admin.get('/api/admin/audit').query({ limit: 2 });
    const page2 = await admin.get('/api/admin/audit').query({ limit: 2, cursor: page1.body.nextCursor });
    expect(page2.body.entries[0].id).toBe(String(Number(page1.body.entries[1].id) - 1));
    expect((await admin.get('/api/admin/audit').query({ cursor: 'x' })).status).toBe(400);
  });

  it('is append-only: the database refuses UPDATE, DELETE and TRUNCATE', async () => {
    await expect(t.t.db('audit_log').update({ action: 'auth.tampered' })).rejects.toThrow(/append-only/);
    await expect(t.t.db('audit_log').delete()).rejects.toThrow(/append-only/);
    await expect(t.t.db.raw('TRUNCATE audit_log')).rejects.toThrow(/append-only/);
  });
});

describe('ledger check', () => {
  it('reports the books as clean', async () => {
    const res = await admin.get('/api/admin/ledger/check');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ ok: true, violations: [] });
  });
});

describe('ensureAdmin', () => {
  it('creates an admin, is idempotent, and promotes an existing user (ending their sessions)', async () => {
    const email = uniqueEmail('boss');
    const created = await ensureAdmin(t.t.db, { email, password: GOOD_PASSWORD });
    expect(created.outcome).toBe('created');
    expect(created.user.role).toBe('admin');
    expect((await ensureAdmin(t.t.db, { email: email.toUpperCase(), password: 'ignored-for-existing' })).outcome).toBe('unchanged');

    const { agent, user: promoted } = await signedInUser(t.app);
    expect((await agent.get('/api/admin/users')).status).toBe(403);
    const result = await ensureAdmin(t.t.db, { email: promoted.email, password: 'unused-password-xyz' });
    expect(result).toMatchObject({ outcome: 'promoted', user: { id: promoted.id, role: 'admin' } });
    expect((await agent.get('/api/auth/me')).status).toBe(401); // sessions ended: log in again
    const again = await request(t.app).post('/api/auth/login').send({ email: promoted.email, password: GOOD_PASSWORD });
    expect(again.body.user.role).toBe('admin');
    expect(await t.t.db('audit_log').where({ action: 'admin.user_promoted', target_id: promoted.id })).toHaveLength(1);
  });

  it('refuses a weak password for a new admin', async () => {
    await expect(ensureAdmin(t.t.db, { email: uniqueEmail('weak'), password: 'password' })).rejects.toThrow(/invalid fields/);
  });
});
