import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { browser, csrfFrom, GOOD_PASSWORD, sessionCookie, signedInUser, uniqueEmail } from './auth-helpers.ts';
import { auditLog } from '../helpers/audit.ts';

let t: TestApp;
let email: string;
let userId: string;
beforeAll(async () => {
  t = await buildTestApp();
  email = uniqueEmail('login');
  const { user } = await signedInUser(t.app, { email, name: 'Linus' });
  userId = user.id;
});
afterAll(async () => t.close());

const storedSids = async () => (await t.t.db('session').select('sid')).map((r: { sid: string }) => r.sid);

describe('POST /api/auth/login', () => {
  it('signs in with {user, balance}', async () => {
    const res = await request(t.app).post('/api/auth/login').send({ email: `  ${email.toUpperCase()} `, password: GOOD_PASSWORD });
    expect(res.status).toBe(200);
    expect(res.body.user).toEqual({ id: userId, email, name: 'Linus', role: 'user' });
    expect(res.body.balance).toMatchObject({ available: 10, held: 0 });
    const cookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('tally.sid='))!;
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Lax/i);
    expect(cookie).not.toMatch(/;\s*Secure/i); // APP_URL is http in tests
  });

  it('gives the same 401 for a wrong password and for an unknown email, and audits both', async () => {
    const wrongPassword = await request(t.app).post('/api/auth/login').send({ email, password: 'not-the-password-1' });
    const unknownEmail = await request(t.app).post('/api/auth/login').send({ email: uniqueEmail('nobody'), password: 'not-the-password-1' });
    expect(wrongPassword.status).toBe(401);
    expect(unknownEmail.status).toBe(401);
    expect(wrongPassword.body.detail).toBe(unknownEmail.body.detail);
    expect(wrongPassword.body.code).toBe(unknownEmail.body.code);
    const failures = await auditLog(t.t.db).where({ action: 'auth.login_failed' });
    expect(failures.length).toBeGreaterThanOrEqual(2);
    expect(JSON.stringify(failures)).not.toContain('not-the-password-1');
  });

  it('refuses unknown fields', async () => {
    const res = await request(t.app).post('/api/auth/login').send({ email, password: GOOD_PASSWORD, role: 'admin' });
    expect(res.status).toBe(400);
    expect(res.body.errors).toContainEqual({ field: 'body.role', message: 'is not an accepted field' });
  });

  it('refuses a cross-site login post (Origin check)', async () => {
    const res = await request(t.app).post('/api/auth/login').set('Origin', 'https://evil.example').send({ email, password: GOOD_PASSWORD });
    expect(res.status).toBe(403);
  });
});

describe('session fixation', () => {
  it('a page login replaces the pre-login session id, and the old id is gone from the store', async () => {
    const agent = browser(t.app);
    const page = await agent.get('/login');
    const before = sessionCookie(page);
    expect(before).toBeDefined(); // the CSRF token lives in a pre-login session

    const login = await agent.post('/login').type('form').send({ _csrf: csrfFrom(page.text), email, password: GOOD_PASSWORD });
    expect(login.status).toBe(303);
    expect(login.headers.location).toBe('/account');
    const after = sessionCookie(login);
    expect(after).toBeDefined();
    expect(after).not.toBe(before);

    const sidOf = (cookie: string) => decodeURIComponent(cookie).slice(2).split('.')[0]!;
    const sids = await storedSids();
    expect(sids).not.toContain(sidOf(before!));
    expect(sids).toContain(sidOf(after!));
    expect((await agent.get('/account')).status).toBe(200);

    // The fixated (pre-login) cookie is worthless.
    const attacker = await request(t.app).get('/api/auth/me').set('Cookie', `tally.sid=${before}`);
    expect(attacker.status).toBe(401);
  });

  it('an API login replaces the session id too', async () => {
    const agent = browser(t.app);
    const first = await agent.post('/api/auth/login').send({ email, password: GOOD_PASSWORD });
    const second = await agent.post('/api/auth/login').send({ email, password: GOOD_PASSWORD });
    expect(sessionCookie(first)).toBeDefined();
    expect(sessionCookie(second)).toBeDefined();
    expect(sessionCookie(second)).not.toBe(sessionCookie(first));
  });
});

describe('logout and sessions', () => {
  it('logout destroys the stored session: 204, then 401', async () => {
    const agent = browser(t.app);
    const login = await agent.post('/api/auth/login').send({ email, password: GOOD_PASSWORD });
    const sid = decodeURIComponent(sessionCookie(login)!).slice(2).split('.')[0]!;
    expect(await storedSids()).toContain(sid);
    const out = await agent.post('/api/auth/logout');
    expect(out.status).toBe(204);
    expect(await storedSids()).not.toContain(sid);
    expect((await agent.get('/api/auth/me')).status).toBe(401);
    // Replaying the old cookie does not bring the session back.
    expect((await request(t.app).get('/api/auth/me').set('Cookie', `tally.sid=${sessionCookie(login)}`)).status).toBe(401);
    expect(await t.t.db('audit_log').where({ action: 'auth.logout', actor_user_id: userId })).not.toHaveLength(0);
  });

  it('lists own sessions and revokes the others', async () => {
    const a = browser(t.app);
    const b = browser(t.app);
    await a.post('/api/auth/login').set('User-Agent', 'Agent A').send({ email, password: GOOD_PASSWORD });
    await b.post('/api/auth/login').set('User-Agent', 'Agent B').send({ email, password: GOOD_PASSWORD });
    const list = await a.get('/api/auth/sessions');
    expect(list.status).toBe(200);
    const mine = list.body.sessions;
    expect(mine.filter((s: { current: boolean }) => s.current)).toHaveLength(1);
    expect(mine.find((s: { current: boolean }) => s.current).userAgent).toBe('Agent A');
    expect(mine.map((s: { userAgent: string }) => s.userAgent)).toContain('Agent B');
    for (const s of mine) expect(s.id).toMatch(/^[0-9a-f]{32}$/);

    const revoke = await a.post('/api/auth/sessions/revoke-others');
    expect(revoke.status).toBe(200);
    expect(revoke.body.revoked).toBeGreaterThanOrEqual(1);
    expect((await b.get('/api/auth/me')).status).toBe(401);
    expect((await a.get('/api/auth/me')).status).toBe(200);
    expect((await a.get('/api/auth/sessions')).body.sessions).toHaveLength(1);
  });

  it('cannot revoke another user’s session (404) but can revoke its own', async () => {
    const victim = browser(t.app);
    await victim.post('/api/auth/login').send({ email, password: GOOD_PASSWORD });
    const victimSession = (await victim.get('/api/auth/sessions')).body.sessions.find((s: { current: boolean }) => s.current);

    const { agent: other } = await signedInUser(t.app);
    const attempt = await other.delete(`/api/auth/sessions/${victimSession.id}`);
    expect(attempt.status).toBe(404);
    expect((await victim.get('/api/auth/me')).status).toBe(200);

    const own = await victim.delete(`/api/auth/sessions/${victimSession.id}`);
    expect(own.status).toBe(204);
    expect((await victim.get('/api/auth/me')).status).toBe(401);
  });

  it('ends a session past the absolute lifetime, however active', async () => {
    const agent = browser(t.app);
    const login = await agent.post('/api/auth/login').send({ email, password: GOOD_PASSWORD });
    const sid = decodeURIComponent(sessionCookie(login)!).slice(2).split('.')[0]!;
    const nineHoursAgo = Date.now() - 9 * 3_600_000;
    await t.t.db.raw(`UPDATE "session" SET sess = jsonb_set(sess::jsonb, '{authenticatedAt}', to_jsonb(?::bigint))::json WHERE sid = ?`, [nineHoursAgo, sid]);
    expect((await agent.get('/api/auth/me')).status).toBe(401);
    expect(await storedSids()).not.toContain(sid);
    // A page still renders (with a fresh anonymous session for its CSRF token).
    expect((await agent.get('/login')).status).toBe(200);
  });

  it('GET /api/auth/me is 401 without a session', async () => {
    const res = await request(t.app).get('/api/auth/me');
    expect(res.status).toBe(401);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
  });
});

describe('secure cookies', () => {
  it('marks the cookie Secure when APP_URL is https (behind a trusted proxy)', async () => {
    const other = await buildTestApp({ env: { APP_URL: 'https://tally.example', TRUST_PROXY: 'true' } });
    try {
      const res = await request(other.app).get('/login').set('X-Forwarded-Proto', 'https');
      const cookie = (res.headers['set-cookie'] as unknown as string[]).find((c) => c.startsWith('tally.sid='))!;
      expect(cookie).toMatch(/;\s*Secure/i);
      expect(cookie).toMatch(/HttpOnly/i);
    } finally {
      await other.close();
    }
  });
});
