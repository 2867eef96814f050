import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';
import { browser, csrfFrom, signedInAdmin, signedInUser, type Agent } from '../auth/auth-helpers.ts';

let t: TestApp;
let admin: Agent;
beforeAll(async () => {
  t = await buildTestApp();
  admin = (await signedInAdmin(t.app, t.t.db)).agent;
});
afterAll(async () => t.close());

const idempotencyKeyOf = (html: string, form: 'grants' | 'adjustments') => {
  const formHtml = html.slice(html.indexOf(`/${form}"`));
  return /name="idempotencyKey" value="([^"]+)"/.exec(formHtml)![1]!;
};

describe('/admin pages', () => {
  it('are for admins only: 403 for users, a login redirect for visitors', async () => {
    const { agent } = await signedInUser(t.app);
    expect((await agent.get('/admin')).status).toBe(403);
    expect((await agent.get('/admin/audit')).status).toBe(403);
    const visitor = await browser(t.app).get('/admin');
    expect(visitor.status).toBe(303);
    expect(visitor.headers.location).toBe('/login?next=%2Fadmin');
  });

  it('find a user, grant 25 credits with a reason through the form; the user sees credits and reason on /account', async () => {
    const { agent: userAgent, user } = await signedInUser(t.app, { name: 'Page Person' });
    const search = await admin.get('/admin').query({ query: user.email });
    expect(search.status).toBe(200);
    expect(search.text).toContain(`/admin/users/${user.id}`);

    const page = await admin.get(`/admin/users/${user.id}`);
    expect(page.status).toBe(200);
    expect(page.text).toContain('Page Person');
    const key = idempotencyKeyOf(page.text, 'grants');
    const form = { _csrf: csrfFrom(page.text), credits: '25', reason: 'Beta tester <3', expiresAt: '', idempotencyKey: key };
    const res = await admin.post(`/admin/users/${user.id}/grants`).type('form').send(form);
    expect(res.status).toBe(303);
    expect(res.headers.location).toBe(`/admin/users/${user.id}`);
    // A double submit of the same form grants once.
    expect((await admin.post(`/admin/users/${user.id}/grants`).type('form').send(form)).status).toBe(303);
    expect((await t.deps.ledger.getBalance(user.id)).available).toBe(35_000);

    const after = await admin.get(`/admin/users/${user.id}`);
    expect(after.text).toContain('Granted 25 credits.');
    expect(after.text).toMatch(/data-testid="available">35</);

    const account = await userAgent.get('/account');
    expect(account.text).toMatch(/data-testid="available">35</);
    expect(account.text).toContain('Beta tester &lt;3');
    expect(account.text).not.toContain('Beta tester <3');
    expect(await booksViolations(t.t.db)).toEqual([]);
  });

  it('re-renders the form with inline errors (400) and refuses to adjust below zero (402)', async () => {
    const { user } = await signedInUser(t.app);
    const page = await admin.get(`/admin/users/${user.id}`);
    const bad = await admin
      .post(`/admin/users/${user.id}/grants`)
      .type('form')
      .send({ _csrf: csrfFrom(page.text), credits: '1.0001', reason: '', idempotencyKey: idempotencyKeyOf(page.text, 'grants') });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('id="grant-credits-error"');
    expect(bad.text).toContain('id="grant-reason-error"');
    expect(bad.text).toContain('value="1.0001"');

    const short = await admin
      .post(`/admin/users/${user.id}/adjustments`)
      .type('form')
      .send({ _csrf: csrfFrom(page.text), credits: '-11', reason: 'Too much', idempotencyKey: idempotencyKeyOf(page.text, 'adjustments') });
    expect(short.status).toBe(402);
    expect(short.text).toContain('id="adjust-credits-error"');
    expect(short.text).toContain('This needs 11 credits; 10 are available.');
    expect((await t.deps.ledger.getBalance(user.id)).available).toBe(10_000);
  });

  it('refuses a grant form without a valid CSRF token (403) and grants nothing', async () => {
    const { user } = await signedInUser(t.app);
    const none = await admin.post(`/admin/users/${user.id}/grants`).type('form').send({ credits: '1000', reason: 'csrf' });
    expect(none.status).toBe(403);
    const forged = await admin.post(`/admin/users/${user.id}/grants`).type('form').send({ _csrf: 'nope', credits: '1000', reason: 'csrf' });
    expect(forged.status).toBe(403);
    expect((await t.deps.ledger.getBalance(user.id)).available).toBe(10_000);
  });

  it('shows the audit log, escaped, with filters', async () => {
    const { user } = await signedInUser(t.app, { name: '<img src=x onerror=alert(1)>' });
    const page = await admin.get('/admin/audit');
    expect(page.status).toBe(200);
    expect(page.text).toContain('auth.signup');
    expect(page.text).not.toContain('<img src=x');
    const filtered = await admin.get('/admin/audit').query({ actor: user.email, action: 'auth.signup' });
    expect(filtered.status).toBe(200);
    expect(filtered.text.match(/data-testid="audit-row"/g)).toHaveLength(1);
    const userPage = await admin.get(`/admin/users/${user.id}`);
    expect(userPage.text).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(userPage.text).not.toContain('<img src=x');
  });

  it('speaks in words: audit details, actors by name and email, holds by file name, breadcrumbs back to users and the audit log', async () => {
    const { user } = await signedInUser(t.app, { name: 'Wordy Person' });
    const page = await admin.get(`/admin/users/${user.id}`);
    const key = idempotencyKeyOf(page.text, 'grants');
    await admin.post(`/admin/users/${user.id}/grants`).type('form').send({ _csrf: csrfFrom(page.text), credits: '5', reason: 'Thanks', expiresAt: '', idempotencyKey: key }).expect(303);
    await t.deps.ledger.reserve({ holdId: `words-${user.id}`, userId: user.id, millicredits: 1500, timeoutMs: 60_000, actor: `user:${user.id}`, reason: 'OCR of scan.pdf (1 page)', reference: { type: 'task', id: user.id } });

    const after = (await admin.get(`/admin/users/${user.id}`)).text;
    expect(after).toContain('<nav aria-label="breadcrumb"><ul><li><a href="/admin">Users</a></li>');
    expect(after).toContain('href="/admin/audit"');
    expect(after).toContain('OCR of scan.pdf (1 page)');
    expect(after).not.toMatch(/task [0-9a-f]{8}-/);
    expect(after).not.toMatch(/admin:[0-9a-f]{8}-/);
    expect(after).toMatch(/Admin[^<]*&lt;[^&]+&gt; \(admin\)/); // the granting admin, by name and email
    expect(after).toContain('Granted 5 credits (For: ' + user.email + '; Reason: Thanks)');

    const audit = (await admin.get('/admin/audit')).text;
    expect(audit).toContain('Signed up');
    expect(audit).toContain('Free credits: 10');
    expect(audit).not.toContain('signupBonusMillicredits');
    expect(audit).not.toMatch(/<code>auth\.signup<\/code>/);
    expect(audit).not.toMatch(/>(user|admin):[0-9a-f-]{36}</);
  });
});
