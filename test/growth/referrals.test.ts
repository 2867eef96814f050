import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import type { TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';
import { signedInAdmin, signedInUser, signupApi, type Agent } from '../auth/auth-helpers.ts';
import { buildEmulatedApp, buyPack, refundPayment } from './emulated-app.ts';

let env: { ta: TestApp; emulator: StripeEmulatorServer; close(): Promise<void> };
let ta: TestApp;
let admin: Agent;
beforeAll(async () => {
  env = await buildEmulatedApp({ REFERRAL_REFEREE_CREDITS: '5', REFERRAL_REFERRER_CREDITS: '10', REFERRAL_MAX_PER_MONTH: '2' });
  ta = env.ta;
  admin = (await signedInAdmin(ta.app, ta.t.db)).agent;
});
afterEach(async () => {
  expect(await booksViolations(ta.t.db)).toEqual([]);
});
afterAll(async () => env.close());

const available = async (userId: string) => (await ta.deps.ledger.getBalance(userId)).available;

/** A referrer (their own browser) and their link's code. */
async function referrer() {
  const r = await signedInUser(ta.app);
  const res = await r.agent.get('/api/referrals').expect(200);
  return { ...r, code: res.body.code as string, link: res.body.link as string };
}

/** A friend in a fresh browser who follows the link and signs up. */
async function friendThrough(code: string) {
  const agent = request.agent(ta.app);
  const visit = await agent.get(`/r/${code}`).expect(303);
  expect(visit.headers.location).toBe('/signup');
  const res = await signupApi(agent);
  expect(res.status).toBe(201);
  return { agent, user: res.body.user as { id: string } };
}

describe('referral links', () => {
  it('gives the new user the referee credits, and the referrer theirs only when the first payment is paid, once', async () => {
    const ref = await referrer();
    expect(ref.link).toBe(`${ta.deps.config.appUrl}/r/${ref.code}`);
    const friend = await friendThrough(ref.code);
    expect(await available(friend.user.id)).toBe(15_000); // sign-up bonus 10 + referral 5
    const lots = (await ta.deps.ledger.getBalance(friend.user.id)).lots.map((l) => l.source).sort();
    expect(lots).toEqual(['referral', 'signup_bonus']);
    expect(await available(ref.user.id)).toBe(10_000);
    expect((await ref.agent.get('/api/referrals')).body).toMatchObject({ referred: 1, rewarded: 0, creditsEarned: 0 });

    await buyPack(env, friend.agent);
    expect(await available(ref.user.id)).toBe(20_000);
    expect((await ref.agent.get('/api/referrals')).body).toMatchObject({ referred: 1, rewarded: 1, creditsEarned: 10 });
    await buyPack(env, friend.agent, '5555 5555 5555 4444');
    expect(await available(ref.user.id)).toBe(20_000);
    expect((await ref.agent.get('/account')).text).toContain(ref.link);
  });

  it('takes the reward back when the first payment is refunded within 30 days, not after', async () => {
    const ref = await referrer();
    const friend = await friendThrough(ref.code);
    const { paymentId } = await buyPack(env, friend.agent);
    expect(await available(ref.user.id)).toBe(20_000);
    await refundPayment(env, admin, paymentId);
    expect(await available(ref.user.id)).toBe(10_000);
    expect((await ref.agent.get('/api/referrals')).body).toMatchObject({ referred: 1, rewarded: 0, creditsEarned: 0 });
    const [clawback] = await ta.t.db('transfers').where({ kind: 'refund_clawback', reference_type: 'referral' });
    expect(Number(clawback.amount)).toBe(10_000);

    const late = await referrer();
    const friend2 = await friendThrough(late.code);
    const second = await buyPack(env, friend2.agent);
    await ta.t.db('payments').where({ id: second.paymentId }).update({ paid_at: new Date(Date.now() - 31 * 86_400_000) });
    await refundPayment(env, admin, second.paymentId);
    expect(await available(late.user.id)).toBe(20_000);
  });

  it('rewards at most REFERRAL_MAX_PER_MONTH referrals per referrer; the new users still get theirs', async () => {
    const ref = await referrer();
    for (let i = 0; i < 3; i++) {
      const friend = await friendThrough(ref.code);
      expect(await available(friend.user.id)).toBe(15_000);
      await buyPack(env, friend.agent);
    }
    expect(await available(ref.user.id)).toBe(30_000); // 10 + 2 × 10
    expect((await ref.agent.get('/api/referrals')).body).toMatchObject({ referred: 3, rewarded: 2, creditsEarned: 20 });
    expect(await ta.t.db('referrals').where({ referrer_id: ref.user.id, status: 'over_monthly_cap' })).toHaveLength(1);
  });
});

describe('self-referral earns nothing', () => {
  it('a sign-up from the referrer’s own browser gets no referral credits and rewards nobody', async () => {
    const ref = await referrer();
    await ref.agent.post('/api/auth/logout').expect(204);
    await ref.agent.get(`/r/${ref.code}`).expect(303);
    const res = await signupApi(ref.agent);
    expect(res.status).toBe(201);
    expect(await available(res.body.user.id)).toBe(10_000);
    await buyPack(env, ref.agent);
    expect(await available(ref.user.id)).toBe(10_000);
    expect((await ta.t.db('referrals').where({ referee_id: res.body.user.id }).first()).status).toBe('self_referral');
  });

  it('a first payment with a card the referrer paid with rewards nobody', async () => {
    const ref = await referrer();
    await buyPack(env, ref.agent, '5555 5555 5555 4444');
    const friend = await friendThrough(ref.code);
    await buyPack(env, friend.agent, '5555 5555 5555 4444');
    expect(await available(ref.user.id)).toBe(110_000); // bonus 10 + own pack 100, no reward
    expect((await ta.t.db('referrals').where({ referee_id: friend.user.id }).first()).status).toBe('self_referral');
  });

  it('an unknown code is a 404 and sets nothing', async () => {
    const res = await request(ta.app).get('/r/nosuchcode1').set('Accept', 'text/html');
    expect(res.status).toBe(404);
    expect(String(res.headers['set-cookie'] ?? '')).not.toContain('tally_ref');
  });
});
