import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { browser, csrfFrom, GOOD_PASSWORD, signedInUser, uniqueEmail } from './auth-helpers.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.close());

describe('sign-up page', () => {
  it('signs up through the form, lands on /tasks with a welcome; /account shows 10 credits expiring in the same 30 days', async () => {
    const agent = browser(t.app);
    const page = await agent.get('/signup');
    expect(page.status).toBe(200);
    expect(page.text).toContain('10 free credits');
    const email = uniqueEmail('form');
    const res = await agent.post('/signup').type('form').send({ _csrf: csrfFrom(page.text), name: 'Form User', email, password: GOOD_PASSWORD });
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/tasks');
    const expiry = new Date(Date.now() + 30 * 86_400_000);
    const day = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeZone: 'UTC' }).format(expiry);
    const tasks = await agent.get('/tasks');
    expect(tasks.text).toContain(`Welcome to Tally! Your 10 free credits are ready until ${day} (30 days).`);
    expect(tasks.text).toContain('run your first job');
    expect((await agent.get('/tasks')).text).not.toContain('Welcome to Tally!'); // the one-time notice

    const account = await agent.get('/account');
    expect(account.status).toBe(200);
    expect(account.text).toMatch(/data-testid="available">10</);
    expect(account.text).toMatch(/data-testid="header-balance"[^>]*><span data-balance>10<\/span> credits/);
    expect(account.text).toContain(day);
    // The lots table and the welcome agree on the days (a lot made moments ago expires "in 30 days", not 29).
    expect(account.text).toContain('(in 30 days)');
    expect(account.text).toContain('Sign-up bonus');
  });

  it('shows field errors inline (400), keeps what was typed, and escapes it', async () => {
    const agent = browser(t.app);
    const page = await agent.get('/signup');
    const res = await agent
      .post('/signup')
      .type('form')
      .send({ _csrf: csrfFrom(page.text), name: '<script>alert(1)</script>', email: 'nope', password: 'short' });
    expect(res.status).toBe(400);
    expect(res.text).toContain('id="email-error"');
    expect(res.text).toContain('id="password-error"');
    expect(res.text).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(res.text).not.toContain('<script>alert(1)</script>');
  });

  it('re-renders with 409 for a taken email', async () => {
    const { user } = await signedInUser(t.app);
    const agent = browser(t.app);
    const page = await agent.get('/signup');
    const res = await agent.post('/signup').type('form').send({ _csrf: csrfFrom(page.text), name: 'Again', email: user.email, password: GOOD_PASSWORD });
    expect(res.status).toBe(409);
    expect(res.text).toContain('already exists');
  });

  it('refuses a form post without a valid CSRF token (403) and creates nothing', async () => {
    const agent = browser(t.app);
    await agent.get('/signup');
    const email = uniqueEmail('csrf');
    const none = await agent.post('/signup').type('form').send({ name: 'X', email, password: GOOD_PASSWORD });
    expect(none.status).toBe(403);
    const forged = await agent.post('/signup').type('form').send({ _csrf: 'f'.repeat(256), name: 'X', email, password: GOOD_PASSWORD });
    expect(forged.status).toBe(403);
    // A token from another session does not work either.
    const other = await browser(t.app).get('/signup');
    const stolen = await agent.post('/signup').type('form').send({ _csrf: csrfFrom(other.text), name: 'X', email, password: GOOD_PASSWORD });
    expect(stolen.status).toBe(403);
    expect(await t.t.db('users').where({ email })).toHaveLength(0);
  });
});

describe('login page', () => {
  it('redirects to a safe `next` after login, and to /account for an off-site one', async () => {
    const { user } = await signedInUser(t.app);
    for (const [next, expected] of [
      ['/account?kind=usage', '/account?kind=usage'],
      ['//evil.example/x', '/account'],
      ['https://evil.example/', '/account'],
      ['/\\evil.example', '/account'],
    ] as const) {
      const agent = browser(t.app);
      const page = await agent.get(`/login?next=${encodeURIComponent(next)}`);
      const res = await agent.post('/login').type('form').send({ _csrf: csrfFrom(page.text), email: user.email, password: GOOD_PASSWORD, next });
      expect(res.status, next).toBe(303);
      expect(res.headers.location, next).toBe(expected);
    }
  });

  it('sends a signed-out visitor of /account to the login page with next', async () => {
    const res = await browser(t.app).get('/account');
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe('/login?next=%2Faccount');
  });

  it('shows the uniform error for wrong credentials with status 401', async () => {
    const agent = browser(t.app);
    const page = await agent.get('/login');
    const res = await agent.post('/login').type('form').send({ _csrf: csrfFrom(page.text), email: uniqueEmail(), password: 'whatever-password' });
    expect(res.status).toBe(401);
    expect(res.text).toContain('Email or password is incorrect.');
  });

  it('refuses a login form without a CSRF token (403)', async () => {
    const { user } = await signedInUser(t.app);
    const res = await browser(t.app).post('/login').type('form').send({ email: user.email, password: GOOD_PASSWORD });
    expect(res.status).toBe(403);
  });
});

describe('logout form', () => {
  it('needs the CSRF token, then ends the session and goes home', async () => {
    const { agent } = await signedInUser(t.app);
    const account = await agent.get('/account');
    expect((await agent.post('/logout').type('form').send({})).status).toBe(403);
    expect((await agent.get('/api/auth/me')).status).toBe(200);
    const out = await agent.post('/logout').type('form').send({ _csrf: csrfFrom(account.text) });
    expect(out.status).toBe(303);
    expect(out.headers.location).toBe('/');
    expect((await agent.get('/api/auth/me')).status).toBe(401);
  });
});
