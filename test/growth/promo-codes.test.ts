import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations, buildUser } from '../helpers/factories.ts';
import { browser, csrfFrom, signedInAdmin, signedInUser, type Agent } from '../auth/auth-helpers.ts';

let t: TestApp;
let admin: Agent;
let adminUser: { id: string; email: string; name: string; role: 'user' | 'admin' };
beforeAll(async () => {
  t = await buildTestApp({ env: { PROMO_REDEEM_MAX_FAILURES: '1000' } });
  const a = await signedInAdmin(t.app, t.t.db);
  admin = a.agent;
  adminUser = { ...a.user, role: 'admin' } as typeof adminUser;
});
afterAll(async () => t.close());

const ctx = (ip = '203.0.113.9') => ({ ip, userAgent: 'test' });

describe('admin API', () => {
  it('creates a code, lists it with its redemption count, refuses the same code in another case (409), deactivates it', async () => {
    const created = await admin.post('/api/admin/promo-codes').send({ code: 'Spring10', credits: 10, creditsExpireDays: 30, maxRedemptions: 5 });
    expect(created.status).toBe(201);
    expect(created.body.promoCode).toMatchObject({ code: 'Spring10', credits: 10, creditsExpireDays: 30, maxRedemptions: 5, perUserLimit: 1, newUsersOnly: false, redemptions: 0, active: true });
    expect((await admin.post('/api/admin/promo-codes').send({ code: 'SPRING10', credits: 1 })).status).toBe(409);

    const { agent } = await signedInUser(t.app);
    expect((await agent.post('/api/credits/redeem').send({ code: 'spring10' })).status).toBe(201);
    const list = await admin.get('/api/admin/promo-codes');
    expect(list.body.promoCodes.find((c: { code: string }) => c.code === 'Spring10')).toMatchObject({ redemptions: 1, active: true });

    const off = await admin.post(`/api/admin/promo-codes/${created.body.promoCode.id}/deactivate`);
    expect(off.status).toBe(200);
    expect(off.body.promoCode.active).toBe(false);
    expect(await booksViolations(t.t.db)).toEqual([]);
  });

  it('refuses bad input with 400 naming each field, and non-admins with 403', async () => {
    const res = await admin.post('/api/admin/promo-codes').send({ code: 'a b', credits: 1.2345, perUserLimit: 0, extra: 1 });
    expect(res.status).toBe(400);
    const fields = res.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['body.code', 'body.credits', 'body.perUserLimit', 'body.extra']));
    const { agent } = await signedInUser(t.app);
    expect((await agent.post('/api/admin/promo-codes').send({ code: 'MINE', credits: 100 })).status).toBe(403);
    expect((await request(t.app).post('/api/credits/redeem').send({ code: 'MINE' })).status).toBe(401);
  });
});

describe('redeem', () => {
  it('grants a promo lot once per user: case-insensitive, second try 409, unknown and inactive the same 404, expired and used up 410', async () => {
    await admin.post('/api/admin/promo-codes').send({ code: 'TEN-CREDITS', credits: 10, creditsExpireDays: 7 });
    const { agent, user } = await signedInUser(t.app);
    const first = await agent.post('/api/credits/redeem').send({ code: 'ten-credits' });
    expect(first.status).toBe(201);
    expect(first.body.lot).toMatchObject({ source: 'promo', amount: 10, remaining: 10 });
    const days = (Date.parse(first.body.lot.expiresAt) - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(6.9);
    expect(first.body.balance.available).toBe(20); // 10 sign-up bonus + 10
    const again = await agent.post('/api/credits/redeem').send({ code: 'TEN-CREDITS' });
    expect(again.status).toBe(409);
    expect(again.headers['content-type']).toContain('application/problem+json');
    expect((await t.deps.ledger.getBalance(user.id)).available).toBe(20_000);

    const unknown = await agent.post('/api/credits/redeem').send({ code: 'NO-SUCH-CODE' });
    const off = await admin.post('/api/admin/promo-codes').send({ code: 'GONE-AWAY', credits: 5 });
    await admin.post(`/api/admin/promo-codes/${off.body.promoCode.id}/deactivate`);
    const inactive = await agent.post('/api/credits/redeem').send({ code: 'gone-away' });
    expect(unknown.status).toBe(404);
    expect(inactive.status).toBe(404);
    expect(inactive.body).toEqual(unknown.body);

    await t.deps.growth.promoCodes.create(adminUser, { code: 'OLD-CODE', millicredits: 5000, perUserLimit: 1, newUsersOnly: false, validUntil: new Date(Date.now() - 1000) }, ctx());
    expect((await agent.post('/api/credits/redeem').send({ code: 'old-code' })).status).toBe(410);
    await admin.post('/api/admin/promo-codes').send({ code: 'ONE-ONLY', credits: 1, maxRedemptions: 1 });
    expect((await agent.post('/api/credits/redeem').send({ code: 'ONE-ONLY' })).status).toBe(201);
    const other = await signedInUser(t.app);
    const usedUp = await other.agent.post('/api/credits/redeem').send({ code: 'ONE-ONLY' });
    expect(usedUp.status).toBe(410);
    expect((await t.deps.ledger.getBalance(other.user.id)).available).toBe(10_000);
    expect((await agent.post('/api/credits/redeem').send({})).status).toBe(400);
    expect(await booksViolations(t.t.db)).toEqual([]);
  });

  it('a per-user limit of 2 gives two lots, and a new-users-only code refuses accounts older than the code (403)', async () => {
    const { agent } = await signedInUser(t.app);
    await admin.post('/api/admin/promo-codes').send({ code: 'TWICE', credits: 2, perUserLimit: 2 });
    expect((await agent.post('/api/credits/redeem').send({ code: 'twice' })).status).toBe(201);
    expect((await agent.post('/api/credits/redeem').send({ code: 'twice' })).status).toBe(201);
    expect((await agent.post('/api/credits/redeem').send({ code: 'twice' })).status).toBe(409);

    await admin.post('/api/admin/promo-codes').send({ code: 'NEWBIES', credits: 3, newUsersOnly: true });
    expect((await agent.post('/api/credits/redeem').send({ code: 'NEWBIES' })).status).toBe(403);
    const fresh = await signedInUser(t.app);
    expect((await fresh.agent.post('/api/credits/redeem').send({ code: 'NEWBIES' })).status).toBe(201);
    expect(await booksViolations(t.t.db)).toEqual([]);
  });

  it('when 100 users race to redeem a 10-use code, exactly 10 get a lot and the rest 410', async () => {
    const code = await t.deps.growth.promoCodes.create(adminUser, { code: 'RACE-10', millicredits: 10_000, maxRedemptions: 10, perUserLimit: 1, newUsersOnly: false }, ctx());
    const users = await Promise.all(Array.from({ length: 100 }, () => buildUser(t.t.db)));
    const results = await Promise.allSettled(
      users.map((u, i) => t.deps.growth.promoCodes.redeem({ ...u, role: 'user' }, 'race-10', ctx(`198.51.100.${i + 1}`))),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(won).toHaveLength(10);
    expect(new Set(lost.map((r) => (r.reason as { status: number }).status))).toEqual(new Set([410]));
    const lots = await t.t.db('lots').join('transfers', 'transfers.id', 'lots.transfer_id').where({ 'transfers.reference_id': code.id, 'lots.source': 'promo' });
    expect(lots).toHaveLength(10);
    expect((await t.t.db('promo_codes').where({ id: code.id }).first()).redemption_count).toBe(10);
    expect(await booksViolations(t.t.db)).toEqual([]);
  });
});

describe('at sign-up', () => {
  it('a promo code given at sign-up is redeemed once the account exists; a bad one leaves the account and says why', async () => {
    await admin.post('/api/admin/promo-codes').send({ code: 'HELLO5', credits: 5 });
    const res = await request(t.app).post('/api/auth/signup').send({ email: `promo-${Date.now()}@example.test`, password: 'correct-lamp-battery-42', name: 'Promo Pat', promoCode: 'hello5' });
    expect(res.status).toBe(201);
    expect(res.body.promoCode).toMatchObject({ redeemed: true, lot: { source: 'promo', amount: 5 } });
    expect(res.body.balance.available).toBe(15);
    const bad = await request(t.app).post('/api/auth/signup').send({ email: `promo-bad-${Date.now()}@example.test`, password: 'correct-lamp-battery-42', name: 'Promo Pam', promoCode: 'NOPE-NOPE' });
    expect(bad.status).toBe(201);
    expect(bad.body.promoCode).toMatchObject({ redeemed: false, status: 404 });
    expect(bad.body.balance.available).toBe(10);

    const page = browser(t.app);
    const form = await page.get('/signup');
    expect(form.text).toContain('name="promoCode"');
    const made = await page.post('/signup').type('form').send({ _csrf: csrfFrom(form.text), name: 'Page Promo', email: `page-promo-${Date.now()}@example.test`, password: 'correct-lamp-battery-42', promoCode: 'HELLO5' });
    expect(made.status).toBe(303);
    expect((await page.get('/tasks')).text).toContain('Your promo code added 5 credits.');
    expect(await booksViolations(t.t.db)).toEqual([]);
  });
});

describe('throttling', () => {
  it('after PROMO_REDEEM_MAX_FAILURES wrong guesses a user gets 429 with Retry-After, even for a real code; real codes do not count', async () => {
    const small = await buildTestApp({ env: { PROMO_REDEEM_MAX_FAILURES: '3' } });
    try {
      const a = await signedInAdmin(small.app, small.t.db);
      await a.agent.post('/api/admin/promo-codes').send({ code: 'REAL-ONE', credits: 1, perUserLimit: 5 });
      const { agent, user } = await signedInUser(small.app);
      // Real codes are given back: five redemptions, none counted.
      for (let i = 0; i < 5; i++) expect((await agent.post('/api/credits/redeem').send({ code: 'REAL-ONE' })).status).toBe(201);
      for (const guess of ['AAAA', 'BBBB', 'CCCC']) expect((await agent.post('/api/credits/redeem').send({ code: guess })).status).toBe(404);
      const blocked = await agent.post('/api/credits/redeem').send({ code: 'REAL-ONE' });
      expect(blocked.status).toBe(429);
      expect(Number(blocked.headers['retry-after'])).toBeGreaterThan(0);
      expect((await small.deps.ledger.getBalance(user.id)).available).toBe(15_000);
      // Per IP too: another user from the same address is blocked as well.
      const second = await signedInUser(small.app);
      expect((await second.agent.post('/api/credits/redeem').send({ code: 'REAL-ONE' })).status).toBe(429);
    } finally {
      await small.close();
    }
  });
});

describe('pages', () => {
  it('an admin creates a code on /admin/promo-codes and a user redeems it with the form on /account', async () => {
    const page = await admin.get('/admin/promo-codes');
    expect(page.status).toBe(200);
    const made = await admin.post('/admin/promo-codes').type('form').send({ _csrf: csrfFrom(page.text), code: 'PAGE-CODE', credits: '4', perUserLimit: '1', creditsExpireDays: '', maxRedemptions: '', validFrom: '', validUntil: '' });
    expect(made.status).toBe(303);
    const listed = await admin.get('/admin/promo-codes');
    expect(listed.text).toContain('PAGE-CODE');
    const bad = await admin.post('/admin/promo-codes').type('form').send({ _csrf: csrfFrom(listed.text), code: 'x', credits: 'lots', perUserLimit: '1' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('aria-invalid="true"');

    const { agent, user } = await signedInUser(t.app);
    const account = await agent.get('/account');
    expect(account.text).toContain('Redeem a code');
    const redeemed = await agent.post('/account/redeem').type('form').send({ _csrf: csrfFrom(account.text), code: 'page-code' });
    expect(redeemed.status).toBe(303);
    const after = await agent.get('/account');
    expect(after.text).toContain('Code redeemed: 4 credits added.');
    expect((await t.deps.ledger.getBalance(user.id)).available).toBe(14_000);
    const twice = await agent.post('/account/redeem').type('form').send({ _csrf: csrfFrom(after.text), code: 'PAGE-CODE' });
    expect(twice.status).toBe(303);
    expect((await agent.get('/account')).text).toContain('already redeemed');
  });
});
