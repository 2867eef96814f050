import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import type { TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';
import { signedInAdmin, signedInUser, type Agent } from '../auth/auth-helpers.ts';
import { buildEmulatedApp, refundPayment } from './emulated-app.ts';

let env: { ta: TestApp; emulator: StripeEmulatorServer; close(): Promise<void> };
let ta: TestApp;
let admin: Agent;
beforeAll(async () => {
  env = await buildEmulatedApp();
  ta = env.ta;
  admin = (await signedInAdmin(ta.app, ta.t.db)).agent;
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => env.close());

const available = async (userId: string) => (await ta.deps.ledger.getBalance(userId)).available;

/** Buys the Professional pack (500 + 25 bonus credits, $20) as a gift; returns the payment and its code. */
async function buyGiftPack(agent: Agent) {
  const checkout = await agent.post('/api/credits/gift-packs').send({ packageId: 'professional' });
  expect(checkout.status).toBe(201);
  await request(env.emulator.emulator.app)
    .post(`/c/pay/${checkout.body.sessionId}`)
    .type('form')
    .send({ email: 'buyer@example.test', cardNumber: '4242 4242 4242 4242', cardExpiry: '12 / 34', cardCvc: '123', billingName: 'Buyer' })
    .expect(303);
  await env.emulator.emulator.deliverDue();
  const codes = (await agent.get('/api/credits/gift-packs').expect(200)).body.giftCodes;
  return { paymentId: checkout.body.paymentId as string, code: codes[0].code as string };
}

describe('a pack bought as a gift', () => {
  it('gives the buyer a code instead of credits; redeeming it grants the pack once; the refund claws back from the redeemer', async () => {
    const buyer = await signedInUser(ta.app);
    const { paymentId, code } = await buyGiftPack(buyer.agent);
    expect(code).toMatch(/^GIFT-[A-Z0-9]{4}-[A-Z0-9]{4}-[A-Z0-9]{4}$/);
    expect(await available(buyer.user.id)).toBe(10_000);
    const mail = await ta.t.db('email_outbox').where({ type: 'gift_code', to_address: buyer.user.email });
    expect(mail).toHaveLength(1);
    expect(mail[0].text_body).toContain(code);
    // The Checkout success page shows the code to pass on, not "your credits are here".
    const sessionId = (await ta.t.db('payments').where({ id: paymentId }).first()).checkout_session_id as string;
    const success = await buyer.agent.get(`/checkout/success?session_id=${sessionId}`).expect(200);
    expect(success.text).toContain('here is your gift');
    expect(success.text).toContain(code);
    expect(success.text).not.toContain('your credits are here');

    const friend = await signedInUser(ta.app);
    const redeemed = await friend.agent.post('/api/credits/redeem').send({ code: code.toLowerCase() });
    expect(redeemed.status).toBe(201);
    expect(redeemed.body.lot).toMatchObject({ source: 'gift_code', amount: 525 });
    expect(await available(friend.user.id)).toBe(535_000);
    expect((await friend.agent.post('/api/credits/redeem').send({ code })).status).toBe(409);
    const third = await signedInUser(ta.app);
    expect((await third.agent.post('/api/credits/redeem').send({ code })).status).toBe(409);

    await refundPayment(env, admin, paymentId);
    expect(await available(friend.user.id)).toBe(10_000);
    expect(await available(buyer.user.id)).toBe(10_000);
  });

  it('refunded before it is redeemed, the code is void (410)', async () => {
    const buyer = await signedInUser(ta.app);
    const { paymentId, code } = await buyGiftPack(buyer.agent);
    await refundPayment(env, admin, paymentId);
    const friend = await signedInUser(ta.app);
    expect((await friend.agent.post('/api/credits/redeem').send({ code })).status).toBe(410);
    expect(await available(friend.user.id)).toBe(10_000);
  });

  it('when two people redeem one gift code at once, exactly one gets the pack', async () => {
    const buyer = await signedInUser(ta.app);
    const { code } = await buyGiftPack(buyer.agent);
    const [a, b] = await Promise.all([signedInUser(ta.app), signedInUser(ta.app)]);
    const results = await Promise.all([a, b].map((u) => u.agent.post('/api/credits/redeem').send({ code })));
    expect(results.map((r) => r.status).sort()).toEqual([201, 409]);
    expect((await available(a.user.id)) + (await available(b.user.id))).toBe(20_000 + 525_000);
  });
});
