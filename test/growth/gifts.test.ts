import crypto from 'node:crypto';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations, buildUser } from '../helpers/factories.ts';
import { csrfFrom, signedInUser, uniqueEmail } from '../auth/auth-helpers.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ env: { GIFT_CLAIM_DAYS: '30' } });
});
afterEach(async () => expect(await booksViolations(t.t.db)).toEqual([]));
afterAll(async () => t.close());

const available = async (userId: string) => (await t.deps.ledger.getBalance(userId)).available;
const DAY = 86_400_000;

/** Purchased credits for a test user (as a paid pack would grant them). */
function buy(userId: string, millicredits: number, expiresAt: Date | null = null) {
  return t.deps.ledger.grant({ transferId: `test-purchase:${crypto.randomUUID()}`, userId, millicredits, kind: 'purchase', actor: 'stripe', reason: 'test pack', expiresAt });
}

async function claimTokenSentTo(email: string): Promise<string> {
  const row = await t.t.db('email_outbox').where({ to_address: email, type: 'gift_received' }).first();
  const m = /\/gifts\/claim\/([\w-]+)/.exec(row.text_body as string);
  return m![1]!;
}

describe('POST /api/credits/gifts', () => {
  it('moves purchased credits to a friend as one gift lot with the soonest expiry, emails them, and replays its Idempotency-Key', async () => {
    const sender = await signedInUser(t.app, { name: 'Sam Sender' });
    const friend = await signedInUser(t.app, { name: 'Fay Friend' });
    const soon = new Date(Date.now() + 20 * DAY);
    await buy(sender.user.id, 3000, soon);
    await buy(sender.user.id, 20_000);
    const key = crypto.randomUUID();
    const body = { toEmail: friend.user.email.toUpperCase(), credits: 5, message: 'Enjoy!' };
    const res = await sender.agent.post('/api/credits/gifts').set('Idempotency-Key', key).send(body);
    expect(res.status).toBe(201);
    expect(res.body.gift).toMatchObject({ toEmail: friend.user.email, credits: 5, status: 'delivered', message: 'Enjoy!' });
    const lot = (await t.deps.ledger.getBalance(friend.user.id)).lots.find((l) => l.source === 'gift')!;
    expect(lot).toMatchObject({ amount: 5000, remaining: 5000 });
    expect(lot.expiresAt!.getTime()).toBe(soon.getTime());
    expect(await available(friend.user.id)).toBe(15_000);
    // The sign-up bonus stays with the sender: only purchased credits moved.
    expect(await available(sender.user.id)).toBe(10_000 + 23_000 - 5000);
    const senderLots = (await t.deps.ledger.getBalance(sender.user.id)).lots;
    expect(senderLots.find((l) => l.source === 'signup_bonus')!.remaining).toBe(10_000);

    const mail = await t.t.db('email_outbox').where({ to_address: friend.user.email, type: 'gift_received' });
    expect(mail).toHaveLength(1);
    expect(mail[0].subject).toBe('Sam Sender sent you 5 Tally credits');

    const again = await sender.agent.post('/api/credits/gifts').set('Idempotency-Key', key).send(body);
    expect(again.status).toBe(201);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.gift.id).toBe(res.body.gift.id);
    expect(await available(friend.user.id)).toBe(15_000);
    expect((await sender.agent.post('/api/credits/gifts').set('Idempotency-Key', key).send({ ...body, credits: 6 })).status).toBe(409);
  });

  it('refuses bonus, promo and trial credits (402), yourself and bad input (400), and strangers without a session (401)', async () => {
    const sender = await signedInUser(t.app);
    const friend = await signedInUser(t.app);
    const short = await sender.agent.post('/api/credits/gifts').send({ toEmail: friend.user.email, credits: 1 });
    expect(short.status).toBe(402);
    expect(await available(sender.user.id)).toBe(10_000);
    await buy(sender.user.id, 1000);
    expect((await sender.agent.post('/api/credits/gifts').send({ toEmail: friend.user.email, credits: 2 })).status).toBe(402);
    const self = await sender.agent.post('/api/credits/gifts').send({ toEmail: sender.user.email, credits: 1 });
    expect(self.status).toBe(400);
    expect(self.body.errors[0].field).toBe('body.toEmail');
    const bad = await sender.agent.post('/api/credits/gifts').send({ toEmail: 'nope', credits: 0.0001, extra: true });
    expect(bad.status).toBe(400);
    expect(bad.body.errors.map((e: { field: string }) => e.field)).toEqual(expect.arrayContaining(['body.toEmail', 'body.credits', 'body.extra']));
    expect((await request(t.app).post('/api/credits/gifts').send({ toEmail: friend.user.email, credits: 1 })).status).toBe(401);
    expect(await available(sender.user.id)).toBe(11_000);
  });

  it('when a gift races a spend of the same credits, exactly one of them gets them', async () => {
    for (let i = 0; i < 5; i++) {
      const u = await buildUser(t.t.db);
      const friend = await buildUser(t.t.db);
      await buy(u.id, 5000);
      const [gift, spend] = await Promise.allSettled([
        t.deps.growth.gifts.send({ ...u, role: 'user' }, { toEmail: friend.email, millicredits: 5000 }, undefined),
        t.deps.ledger.debit({ transferId: `spend:${crypto.randomUUID()}`, userId: u.id, millicredits: 5000, kind: 'usage', actor: 'test' }),
      ]);
      expect([gift.status, spend.status].filter((s) => s === 'fulfilled')).toHaveLength(1);
      expect(await available(u.id)).toBe(0);
      expect(await available(friend.id)).toBe(gift.status === 'fulfilled' ? 5000 : 0);
    }
  });
});

describe('gifts to people without an account', () => {
  it('wait as a claim link: the new user claims them once, a second claim is 409', async () => {
    const sender = await signedInUser(t.app);
    await buy(sender.user.id, 8000);
    const email = uniqueEmail('newbie');
    const res = await sender.agent.post('/api/credits/gifts').send({ toEmail: email, credits: 8 });
    expect(res.status).toBe(201);
    expect(res.body.gift.status).toBe('pending_claim');
    expect(JSON.stringify(res.body)).not.toContain('/gifts/claim/');
    const token = await claimTokenSentTo(email);

    const page = await request(t.app).get(`/gifts/claim/${token}`).set('Accept', 'text/html');
    expect(page.status).toBe(200);
    expect(page.text).toContain('Sign up and claim');
    const newbie = await signedInUser(t.app, { email });
    const claimed = await newbie.agent.post('/api/gifts/claim').send({ token });
    expect(claimed.status).toBe(201);
    expect(claimed.body.lot).toMatchObject({ source: 'gift', amount: 8 });
    expect(await available(newbie.user.id)).toBe(18_000);
    const other = await signedInUser(t.app);
    expect((await other.agent.post('/api/gifts/claim').send({ token })).status).toBe(409);
    expect((await newbie.agent.post('/api/gifts/claim').send({ token: 'x'.repeat(30) })).status).toBe(404);
  });

  it('when two people claim one gift at once, exactly one gets it', async () => {
    const sender = await signedInUser(t.app);
    await buy(sender.user.id, 4000);
    const email = uniqueEmail('shared');
    await sender.agent.post('/api/credits/gifts').send({ toEmail: email, credits: 4 }).expect(201);
    const token = await claimTokenSentTo(email);
    const [a, b] = await Promise.all([buildUser(t.t.db), buildUser(t.t.db)]);
    const results = await Promise.allSettled([a, b].map((u) => t.deps.growth.gifts.claim({ ...u, role: 'user' }, token)));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect((await available(a.id)) + (await available(b.id))).toBe(4000);
  });

  it('go back to the sender as a lot after GIFT_CLAIM_DAYS unclaimed; a late claim is 410', async () => {
    const sender = await signedInUser(t.app);
    await buy(sender.user.id, 6000);
    const email = uniqueEmail('late');
    await sender.agent.post('/api/credits/gifts').send({ toEmail: email, credits: 6 }).expect(201);
    expect(await available(sender.user.id)).toBe(10_000);
    const token = await claimTokenSentTo(email);
    const gift = await t.t.db('gifts').where({ to_email: email }).first();
    expect((gift.claim_expires_at.getTime() - Date.now()) / DAY).toBeGreaterThan(29.9);
    await t.t.db('gifts').where({ id: gift.id }).update({ claim_expires_at: new Date(Date.now() - 1000) });
    expect(await t.deps.growth.gifts.returnExpired()).toBe(1);
    expect(await t.deps.growth.gifts.returnExpired()).toBe(0);
    expect(await available(sender.user.id)).toBe(16_000);
    expect((await t.deps.ledger.getBalance(sender.user.id)).lots.map((l) => l.source)).toContain('gift_return');
    const late = await signedInUser(t.app, { email });
    expect((await late.agent.post('/api/gifts/claim').send({ token })).status).toBe(410);
  });
});

describe('pages', () => {
  it('gives credits with the form on /account and lists the gift', async () => {
    const sender = await signedInUser(t.app);
    const friend = await signedInUser(t.app);
    await buy(sender.user.id, 5000);
    const page = await sender.agent.get('/account');
    expect(page.text).toContain('Give credits');
    const key = /name="idempotencyKey" value="([^"]+)"/.exec(page.text)![1]!;
    const res = await sender.agent.post('/account/gifts').type('form').send({ _csrf: csrfFrom(page.text), idempotencyKey: key, toEmail: friend.user.email, credits: '5', message: '' });
    expect(res.status).toBe(303);
    const after = await sender.agent.get('/account');
    expect(after.text).toContain(`Sent 5 credits to ${friend.user.email}.`);
    expect(after.text).toContain('data-testid="gift-sent"');
    // A double submit of the same form gives once.
    await sender.agent.post('/account/gifts').type('form').send({ _csrf: csrfFrom(after.text), idempotencyKey: key, toEmail: friend.user.email, credits: '5', message: '' });
    expect(await available(friend.user.id)).toBe(15_000);
  });
});
