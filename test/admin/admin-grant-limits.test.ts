import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';
import { signedInAdmin, signedInUser, type Agent } from '../auth/auth-helpers.ts';

let t: TestApp;
let admin: Agent;
beforeAll(async () => {
  t = await buildTestApp();
  admin = (await signedInAdmin(t.app, t.t.db)).agent;
});
afterAll(async () => t.close());

describe('admin grants under pressure (issue 9, defects 6 and 7)', () => {
  it('one Idempotency-Key sent for two different users at the same moment: one 201 and one 409, never 500', async () => {
    for (let round = 0; round < 5; round++) {
      const [a, b] = [(await signedInUser(t.app)).user, (await signedInUser(t.app)).user];
      const key = `shared-key-${round}-${a.id}`;
      const send = (userId: string) => admin.post(`/api/admin/users/${userId}/grants`).set('Idempotency-Key', key).send({ credits: 5, reason: 'Goodwill' });
      const responses = await Promise.all([send(a.id), send(b.id)]);
      expect(responses.map((r) => r.status).sort()).toEqual([201, 409]);
      const refused = responses.find((r) => r.status === 409)!;
      expect(refused.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(refused.body).toMatchObject({ status: 409, code: 'idempotency_conflict' });
      const balances = [(await t.deps.ledger.getBalance(a.id)).available, (await t.deps.ledger.getBalance(b.id)).available].sort((x, y) => x - y);
      expect(balances).toEqual([10_000, 15_000]); // the 10 sign-up credits each, and one grant of 5
    }
    expect(await booksViolations(t.t.db)).toEqual([]);
  });

  it('a grant past 2^53 − 1 millicredits is a 409 saying why, and the account near the limit can still spend', async () => {
    const { agent, user } = await signedInUser(t.app); // 10 credits from sign-up
    const big = await admin.post(`/api/admin/users/${user.id}/grants`).send({ credits: '9007199254000', reason: 'Near the limit' });
    expect(big.status).toBe(201);
    const over = await admin.post(`/api/admin/users/${user.id}/grants`).send({ credits: 1000, reason: 'One more' });
    expect(over.status).toBe(409);
    expect(over.body).toMatchObject({ status: 409, code: 'balance_limit' });
    expect(over.body.detail).toMatch(/largest balance/);
    const balance = await agent.get('/api/credits/balance');
    expect(balance.status).toBe(200);
    expect(balance.body.available).toBe(9007199254010);

    // Spending still works: a hold, its post, a debit (negative adjustment), and the balance after.
    const hold = await t.deps.ledger.reserve({ holdId: `near-${user.id}`, userId: user.id, millicredits: 1500, timeoutMs: 60_000, actor: 'system' });
    await t.deps.ledger.post({ holdId: hold.id, millicredits: 1500, actor: 'system' });
    const adjust = await admin.post(`/api/admin/users/${user.id}/adjustments`).send({ credits: -2, reason: 'Correction' });
    expect(adjust.status).toBe(201);
    expect((await agent.get('/api/credits/balance')).body.available).toBe(9007199254006.5);
    expect((await agent.get('/api/credits/transfers')).status).toBe(200);
    expect(await booksViolations(t.t.db)).toEqual([]);
  });
});
