import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RESET_TOKEN_MINUTES } from '../../src/recovery/recovery-service.ts';
import { browser, csrfFrom, GOOD_PASSWORD, signedInUser, uniqueEmail } from '../auth/auth-helpers.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { manualClock } from './helpers.ts';

let ta: TestApp;
const clock = manualClock();
const NEW_PASSWORD = 'violet-harbour-kettle-97';

beforeAll(async () => {
  ta = await buildTestApp({ env: { TRUST_PROXY: 'true', PASSWORD_RESET_MAX_PER_IP: '3', PASSWORD_RESET_MAX_PER_EMAIL: '2' }, notify: { clock } });
});
afterAll(async () => {
  await ta.close();
});

let ipCounter = 0;
/** Each call from a fresh address, so the per-IP limit only matters where a test wants it. */
const fromNewIp = () => `10.9.${Math.floor(++ipCounter / 250)}.${ipCounter % 250}`;
/** Asks for a reset; the lookup and email happen after the 202, so wait for that work too. */
async function askReset(email: string, ip = fromNewIp()) {
  const res = await request(ta.app).post('/api/auth/password-reset').set('X-Forwarded-For', ip).send({ email });
  await ta.deps.notifications.recovery.settled();
  return res;
}
const resetEmails = (email: string) => ta.t.db('email_outbox').where({ to_address: email, type: 'password_reset' }).orderBy('created_at');
const tokenIn = (text: string) => /reset-password\?token=([A-Za-z0-9_-]{43})/.exec(text)![1]!;

describe('POST /api/auth/password-reset', () => {
  it('answers 202 the same way for a known and an unknown address; only the known one gets an email', async () => {
    const { user } = await signedInUser(ta.app);
    const known = await askReset(user.email);
    expect(known.status).toBe(202);
    const unknownEmail = uniqueEmail('nobody');
    const unknown = await askReset(unknownEmail);
    expect(unknown.status).toBe(202);
    expect(unknown.body).toEqual(known.body);
    expect(Object.keys(unknown.headers).sort()).toEqual(Object.keys(known.headers).sort());
    expect(await resetEmails(user.email)).toHaveLength(1);
    expect(await resetEmails(unknownEmail)).toHaveLength(0);
    // The token is stored hashed: the emailed token is not in the table.
    const token = tokenIn((await resetEmails(user.email))[0].text_body);
    const rows = await ta.t.db('auth_tokens').where({ user_id: user.id, purpose: 'password_reset' });
    expect(rows).toHaveLength(1);
    expect(JSON.stringify(rows)).not.toContain(token);
    const expiresIn = rows[0].expires_at.getTime() - rows[0].created_at.getTime();
    expect(Math.abs(expiresIn - RESET_TOKEN_MINUTES * 60_000)).toBeLessThan(5_000);
  });

  it('is throttled per IP (429) and per email (still 202, no more emails)', async () => {
    const { user } = await signedInUser(ta.app);
    const ip = fromNewIp();
    for (let i = 0; i < 3; i++) expect((await askReset(uniqueEmail(), ip)).status).toBe(202);
    const limited = await askReset(user.email, ip);
    expect(limited.status).toBe(429);
    expect(limited.headers['retry-after']).toMatch(/^\d+$/);
    expect(await resetEmails(user.email)).toHaveLength(0);

    for (let i = 0; i < 4; i++) expect((await askReset(user.email)).status).toBe(202);
    expect(await resetEmails(user.email)).toHaveLength(2);
  });

  it('refuses a malformed body with a 400 naming the field', async () => {
    const res = await request(ta.app).post('/api/auth/password-reset').send({ email: 'not-an-email', x: 1 }).expect(400);
    expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['body.email', 'body.x']);
  });
});

describe('POST /api/auth/password-reset/confirm', () => {
  it('sets the password once, revokes every session and emails a notice; the token cannot be used again', async () => {
    const { agent, user } = await signedInUser(ta.app);
    const second = browser(ta.app);
    await second.post('/api/auth/login').send({ email: user.email, password: GOOD_PASSWORD }).expect(200);
    expect((await askReset(user.email)).status).toBe(202);
    const token = tokenIn((await resetEmails(user.email))[0].text_body);

    const weak = await request(ta.app).post('/api/auth/password-reset/confirm').send({ token, password: 'short' }).expect(400);
    expect(weak.body.errors[0].field).toBe('body.password');
    const asEmail = await request(ta.app).post('/api/auth/password-reset/confirm').send({ token, password: user.email }).expect(400);
    expect(asEmail.body.errors.map((e: { message: string }) => e.message)).toContain('must not be your email address');

    await request(ta.app).post('/api/auth/password-reset/confirm').send({ token, password: NEW_PASSWORD }).expect(200);
    await agent.get('/api/auth/me').expect(401);
    await second.get('/api/auth/me').expect(401);
    await request(ta.app).post('/api/auth/login').send({ email: user.email, password: GOOD_PASSWORD }).expect(401);
    await request(ta.app).post('/api/auth/login').send({ email: user.email, password: NEW_PASSWORD }).expect(200);

    const again = await request(ta.app).post('/api/auth/password-reset/confirm').send({ token, password: 'another-fine-password-12' }).expect(400);
    expect(again.body.errors).toEqual([{ field: 'body.token', message: expect.stringContaining('invalid or has expired') }]);
    const notice = await ta.t.db('email_outbox').where({ to_address: user.email, type: 'password_changed' });
    expect(notice).toHaveLength(1);
    expect(notice[0].subject).toBe('Your Tally password was changed');
    const audit = await ta.t.db('audit_log').where({ action: 'auth.password_reset', target_id: user.id });
    expect(audit).toHaveLength(1);
  });

  it('two concurrent confirms with one token: exactly one sets the password', async () => {
    const { user } = await signedInUser(ta.app);
    expect((await askReset(user.email)).status).toBe(202);
    const token = tokenIn((await resetEmails(user.email))[0].text_body);
    const results = await Promise.all(
      ['first-choice-password-1', 'second-choice-password-2'].map((password) => request(ta.app).post('/api/auth/password-reset/confirm').send({ token, password })),
    );
    expect(results.map((r) => r.status).sort()).toEqual([200, 400]);
    expect(await ta.t.db('email_outbox').where({ to_address: user.email, type: 'password_changed' })).toHaveLength(1);
  });

  it('a token older than 30 minutes no longer works (injected clock)', async () => {
    const { user } = await signedInUser(ta.app);
    expect((await askReset(user.email)).status).toBe(202);
    const token = tokenIn((await resetEmails(user.email))[0].text_body);
    clock.advance(RESET_TOKEN_MINUTES * 60_000 + 1_000);
    const res = await request(ta.app).post('/api/auth/password-reset/confirm').send({ token, password: NEW_PASSWORD }).expect(400);
    expect(res.body.errors[0].field).toBe('body.token');
    await request(ta.app).post('/api/auth/login').send({ email: user.email, password: GOOD_PASSWORD }).expect(200);
    await browser(ta.app).get(`/reset-password?token=${token}`).expect(400);
  });

  it('refuses a token that is not one this app makes', async () => {
    const res = await request(ta.app).post('/api/auth/password-reset/confirm').send({ token: 'abc', password: NEW_PASSWORD }).expect(400);
    expect(res.body.errors[0].field).toBe('body.token');
  });
});

describe('the pages', () => {
  it('from the login page: forgot password → email → reset form → log in with the new password', async () => {
    const { user } = await signedInUser(ta.app, { name: 'Paula Pages' });
    const visitor = browser(ta.app).set('X-Forwarded-For', fromNewIp());
    const login = await visitor.get('/login').expect(200);
    expect(login.text).toContain('href="/forgot-password"');
    const forgot = await visitor.get('/forgot-password').expect(200);
    expect(forgot.text).toMatch(/<label for="forgot-email">/);
    const sent = await visitor.post('/forgot-password').type('form').send({ _csrf: csrfFrom(forgot.text), email: user.email }).expect(202);
    expect(sent.text).toContain('an email with a link');
    await ta.deps.notifications.recovery.settled();
    const token = tokenIn((await resetEmails(user.email))[0].text_body);
    const form = await visitor.get(`/reset-password?token=${token}`).expect(200);
    expect(form.text).toMatch(/<label for="reset-password">/);
    const bad = await visitor.post('/reset-password').type('form').send({ _csrf: csrfFrom(form.text), token, password: 'short' }).expect(400);
    expect(bad.text).toContain('Password must be at least 12 characters');
    const done = await visitor.post('/reset-password').type('form').send({ _csrf: csrfFrom(bad.text), token, password: NEW_PASSWORD }).expect(303);
    expect(done.headers.location).toBe('/login');
    const back = await visitor.get('/login').expect(200);
    expect(back.text).toContain('Your password was changed');
    await visitor.post('/login').type('form').send({ _csrf: csrfFrom(back.text), email: user.email, password: NEW_PASSWORD }).expect(303);
  });
});

describe('email verification', () => {
  it('sign-up sends a link; /account shows not verified, then verified after the link is confirmed once', async () => {
    const { agent, user } = await signedInUser(ta.app);
    let account = await agent.get('/account').expect(200);
    expect(account.text).toMatch(/data-testid="email-verified">[^<]*is <strong>not verified yet/);
    const [mail] = await ta.t.db('email_outbox').where({ to_address: user.email, type: 'email_verification' });
    const token = /verify-email\?token=([A-Za-z0-9_-]{43})/.exec(mail.text_body)![1]!;
    const page = await agent.get(`/verify-email?token=${token}`).expect(200);
    const ok = await agent.post('/verify-email').type('form').send({ _csrf: csrfFrom(page.text), token }).expect(200);
    expect(ok.text).toContain('your email address is verified');
    account = await agent.get('/account').expect(200);
    expect(account.text).toMatch(/data-testid="email-verified">[^<]*is <strong>verified/);
    await request(ta.app).post('/api/auth/email-verification/confirm').send({ token }).expect(400);
    expect((await agent.post('/api/auth/email-verification').send({}).expect(202)).body.status).toBe('already_verified');
  });

  it('a new link can be asked for through the API', async () => {
    const { agent, user } = await signedInUser(ta.app);
    expect((await agent.post('/api/auth/email-verification').send({}).expect(202)).body.status).toBe('accepted');
    const mails = await ta.t.db('email_outbox').where({ to_address: user.email, type: 'email_verification' }).orderBy('created_at');
    expect(mails).toHaveLength(2);
    const token = /verify-email\?token=([A-Za-z0-9_-]{43})/.exec(mails[1].text_body)![1]!;
    await request(ta.app).post('/api/auth/email-verification/confirm').send({ token }).expect(200);
    expect((await ta.t.db('users').where({ id: user.id }).first()).email_verified_at).toBeInstanceOf(Date);
  });
});
