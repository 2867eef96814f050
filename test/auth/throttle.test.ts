import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { browser, csrfFrom, GOOD_PASSWORD, signedInUser, uniqueEmail } from './auth-helpers.ts';

// 3 failures per 15 minutes; X-Forwarded-For is trusted so tests can speak from several IPs.
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ env: { LOGIN_MAX_FAILURES: '3', LOGIN_WINDOW_MINUTES: '15', TRUST_PROXY: 'true' } });
});
afterAll(async () => t.close());

const login = (email: string, password: string, ip: string) =>
  request(t.app).post('/api/auth/login').set('X-Forwarded-For', ip).send({ email, password });

describe('login throttling', () => {
  it('per account: after 3 failures from anywhere, even the right password gets 429 with Retry-After', async () => {
    const { user } = await signedInUser(t.app);
    for (const ip of ['10.0.0.1', '10.0.0.2', '10.0.0.3']) {
      expect((await login(user.email, 'wrong-password-123', ip)).status).toBe(401);
    }
    const blocked = await login(user.email, GOOD_PASSWORD, '10.0.0.4');
    expect(blocked.status).toBe(429);
    expect(blocked.headers['content-type']).toMatch(/application\/problem\+json/);
    const retryAfter = Number(blocked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    expect(blocked.body).toMatchObject({ status: 429, code: 'rate_limited' });
  });

  it('per IP: after 3 failures on different accounts, that IP gets 429; another IP does not', async () => {
    const ip = '10.1.0.1';
    for (let i = 0; i < 3; i++) expect((await login(uniqueEmail('spray'), 'wrong-password-123', ip)).status).toBe(401);
    expect((await login(uniqueEmail('spray'), 'wrong-password-123', ip)).status).toBe(429);
    expect((await login(uniqueEmail('spray'), 'wrong-password-123', '10.1.0.2')).status).toBe(401);
  });

  it('a successful login clears the account’s failures', async () => {
    const { user } = await signedInUser(t.app);
    const ip = '10.2.0.1';
    expect((await login(user.email, 'wrong-password-123', ip)).status).toBe(401);
    expect((await login(user.email, 'wrong-password-123', ip)).status).toBe(401);
    expect((await login(user.email, GOOD_PASSWORD, ip)).status).toBe(200);
    expect((await login(user.email, 'wrong-password-123', '10.2.0.2')).status).toBe(401);
    expect((await login(user.email, 'wrong-password-123', '10.2.0.3')).status).toBe(401);
    expect((await login(user.email, GOOD_PASSWORD, '10.2.0.4')).status).toBe(200);
  });

  it('a parallel burst of guesses gets no more than the limit checked', async () => {
    const { user } = await signedInUser(t.app);
    const results = await Promise.all(Array.from({ length: 10 }, (_, i) => login(user.email, `wrong-password-${i}`, `10.3.0.${i + 1}`)));
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(3);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThanOrEqual(7);
  });

  it('the login page shows the throttle as a form error with status 429', async () => {
    const { user } = await signedInUser(t.app);
    const agent = browser(t.app);
    let page = await agent.get('/login').set('X-Forwarded-For', '10.4.0.1');
    for (let i = 0; i < 3; i++) {
      const res = await agent.post('/login').set('X-Forwarded-For', '10.4.0.1').type('form').send({ _csrf: csrfFrom(page.text), email: user.email, password: 'wrong-password-123' });
      expect(res.status).toBe(401);
      expect(res.text).toContain('Email or password is incorrect.');
      page = res;
    }
    const res = await agent.post('/login').set('X-Forwarded-For', '10.4.0.1').type('form').send({ _csrf: csrfFrom(page.text), email: user.email, password: GOOD_PASSWORD });
    expect(res.status).toBe(429);
    expect(res.headers['retry-after']).toBeDefined();
    expect(res.text).toContain('Too many sign-in attempts');
  });

  it('keeps no emails or IP addresses in the limiter table', async () => {
    const rows = await t.t.db('login_rate_limits').select('key');
    expect(rows.length).toBeGreaterThan(0);
    for (const { key } of rows) expect(key).toMatch(/^(login_account|login_ip|signup_ip):[0-9a-f]{64}$/);
  });
});

describe('sign-up throttling', () => {
  it('after SIGNUP_MAX_PER_IP sign-ups from one IP, the next gets 429 and no free credits; another IP still signs up', async () => {
    const limited = await buildTestApp({ env: { SIGNUP_MAX_PER_IP: '2', SIGNUP_WINDOW_MINUTES: '60', TRUST_PROXY: 'true' } });
    try {
      const signup = (ip: string, email = uniqueEmail('farm')) =>
        request(limited.app).post('/api/auth/signup').set('X-Forwarded-For', ip).send({ email, password: GOOD_PASSWORD, name: 'Farmer' });
      expect((await signup('10.9.0.1')).status).toBe(201);
      expect((await signup('10.9.0.1')).status).toBe(201);
      const email = uniqueEmail('farm');
      const blocked = await signup('10.9.0.1', email);
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      expect(await limited.t.db('users').where({ email }).first()).toBeUndefined();
      expect(await limited.t.db('transfers').where({ kind: 'signup_bonus' }).count({ n: '*' })).toEqual([{ n: 2 }]);
      expect((await signup('10.9.0.2')).status).toBe(201);
    } finally {
      await limited.close();
    }
  });
});
