import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';
import { GOOD_PASSWORD, signupApi, uniqueEmail } from './auth-helpers.ts';
import { auditLog } from '../helpers/audit.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.close());

describe('POST /api/auth/signup', () => {
  it('creates the user, starts a session and grants 10 credits that expire in 30 days', async () => {
    const agent = request.agent(t.app);
    const email = uniqueEmail();
    const before = Date.now();
    const res = await signupApi(agent, { email, name: 'Grace Hopper' });
    expect(res.status).toBe(201);
    expect(res.body.user).toEqual({ id: expect.any(String), email, name: 'Grace Hopper', role: 'user' });
    expect(res.body.balance).toMatchObject({ available: 10, held: 0, debt: 0, holds: [] });
    expect(res.body.balance.lots).toHaveLength(1);
    const lot = res.body.balance.lots[0];
    expect(lot).toMatchObject({ source: 'signup_bonus', amount: 10, remaining: 10 });
    const expires = new Date(lot.expiresAt).getTime();
    expect(expires).toBeGreaterThanOrEqual(before + 30 * 86_400_000 - 1000);
    expect(expires).toBeLessThanOrEqual(Date.now() + 30 * 86_400_000 + 1000);

    const me = await agent.get('/api/auth/me');
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(res.body.user.id);
    expect(me.body.balance.available).toBe(10);

    const transfers = await t.t.db('transfers').where({ kind: 'signup_bonus', reference_id: res.body.user.id });
    expect(transfers).toHaveLength(1);
    expect(transfers[0].id).toBe(`signup_bonus:${res.body.user.id}`);
    const audit = await auditLog(t.t.db).where({ action: 'auth.signup', actor_user_id: res.body.user.id });
    expect(audit).toHaveLength(1);
    expect(audit[0].ip).toBeTruthy();
    expect(await booksViolations(t.t.db)).toEqual([]);
  });

  it('stores the password as a bcrypt hash of cost 12, never in clear', async () => {
    const email = uniqueEmail();
    await signupApi(request(t.app), { email });
    const row = await t.t.db('users').where({ email }).first();
    expect(row.password_hash).toMatch(/^\$2[aby]\$12\$/);
    expect(row.password_hash).not.toContain(GOOD_PASSWORD);
  });

  it('normalizes the email (trim, lower-case) and refuses a duplicate with 409', async () => {
    const local = uniqueEmail('Mixed.Case');
    const res = await signupApi(request(t.app), { email: `  ${local.toUpperCase()}  ` });
    expect(res.status).toBe(201);
    expect(res.body.user.email).toBe(local.toLowerCase());

    const dup = await signupApi(request(t.app), { email: local.toLowerCase() });
    expect(dup.status).toBe(409);
    expect(dup.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(dup.body).toMatchObject({ status: 409, code: 'email_taken' });
    expect(await t.t.db('users').where({ email: local.toLowerCase() })).toHaveLength(1);
  });

  it('refuses mass assignment: role and balance in the body are rejected and nothing is created', async () => {
    const email = uniqueEmail();
    const res = await request(t.app)
      .post('/api/auth/signup')
      .send({ email, password: GOOD_PASSWORD, name: 'Mallory', role: 'admin', balance: 1_000_000 });
    expect(res.status).toBe(400);
    expect(res.body.errors).toEqual(
      expect.arrayContaining([
        { field: 'body.role', message: 'is not an accepted field' },
        { field: 'body.balance', message: 'is not an accepted field' },
      ]),
    );
    expect(await t.t.db('users').where({ email })).toHaveLength(0);
  });

  it('lists every bad field: email, short password, blank name', async () => {
    const res = await request(t.app).post('/api/auth/signup').send({ email: 'not-an-email', password: 'short', name: '   ' });
    expect(res.status).toBe(400);
    const fields = res.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['body.email', 'body.password', 'body.name']));
  });

  it('refuses a common password, a password equal to the email, and one over 128 characters', async () => {
    const email = uniqueEmail();
    for (const password of ['password1234', 'Qwertyuiop123', email, `${email.split('@')[0]}`, 'x'.repeat(129)]) {
      const res = await request(t.app).post('/api/auth/signup').send({ email, password, name: 'N' });
      expect(res.status, password).toBe(400);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain('body.password');
    }
  });

  it('accepts a long password with non-ASCII characters and every character counts (beyond bcrypt’s 72 bytes)', async () => {
    const email = uniqueEmail();
    const password = `${'ü'.repeat(60)}-tail-A`;
    expect((await signupApi(request(t.app), { email, password })).status).toBe(201);
    const wrongTail = await request(t.app).post('/api/auth/login').send({ email, password: `${'ü'.repeat(60)}-tail-B` });
    expect(wrongTail.status).toBe(401);
    const right = await request(t.app).post('/api/auth/login').send({ email, password });
    expect(right.status).toBe(200);
  });

  it('grants the signup bonus exactly once when the same signup is retried concurrently', async () => {
    const email = uniqueEmail('race');
    const results = await Promise.all(
      Array.from({ length: 6 }, () => request(t.app).post('/api/auth/signup').send({ email, password: GOOD_PASSWORD, name: 'Racer' })),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([201, 409, 409, 409, 409, 409]);
    const users = await t.t.db('users').where({ email });
    expect(users).toHaveLength(1);
    const bonuses = await t.t.db('transfers').where({ kind: 'signup_bonus', reference_id: users[0].id });
    expect(bonuses).toHaveLength(1);
    expect((await t.deps.ledger.getBalance(users[0].id)).available).toBe(10_000);
    expect(await booksViolations(t.t.db)).toEqual([]);
  });
});

describe('GET /api/auth/password-requirements', () => {
  it('describes the policy for forms', async () => {
    const res = await request(t.app).get('/api/auth/password-requirements');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ minLength: 12, maxLength: 128, notEmail: true, notCommon: true });
    expect(res.body.rules.length).toBeGreaterThan(0);
  });
});

describe('signup bonus configuration', () => {
  it('uses SIGNUP_BONUS_CREDITS and SIGNUP_BONUS_DAYS', async () => {
    const other = await buildTestApp({ env: { SIGNUP_BONUS_CREDITS: '2.5', SIGNUP_BONUS_DAYS: '7' } });
    try {
      const res = await signupApi(request(other.app));
      expect(res.status).toBe(201);
      expect(res.body.balance.available).toBe(2.5);
      const days = (new Date(res.body.balance.lots[0].expiresAt).getTime() - Date.now()) / 86_400_000;
      expect(days).toBeGreaterThan(6.99);
      expect(days).toBeLessThanOrEqual(7);
    } finally {
      await other.close();
    }
  });
});
