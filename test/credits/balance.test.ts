import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { balanceJson } from '../../src/credits/credits-json.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations, fundAccount } from '../helpers/factories.ts';
import { signedInUser } from '../auth/auth-helpers.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.close());

describe('GET /api/credits/balance', () => {
  it('needs a session', async () => {
    expect((await request(t.app).get('/api/credits/balance')).status).toBe(401);
  });

  it('shows available, held, debt, lots (with expiry) and holds, in credits', async () => {
    const { agent, user } = await signedInUser(t.app);
    await fundAccount(t.deps.ledger, user.id, 2_500);
    await t.deps.ledger.reserve({ holdId: `h-${user.id}`, userId: user.id, millicredits: 1_250, timeoutMs: 3_600_000, actor: 'system', reference: { type: 'task', id: 'task-1' } });

    const res = await agent.get('/api/credits/balance');
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ available: 11.25, held: 1.25, debt: 0 });
    expect(res.body.lots).toEqual([
      { id: expect.any(String), source: 'signup_bonus', amount: 10, remaining: 10, expiresAt: expect.any(String) },
      { id: expect.any(String), source: 'bonus', amount: 2.5, remaining: 2.5, expiresAt: null },
    ]);
    expect(res.body.holds).toEqual([{ id: `h-${user.id}`, amount: 1.25, expiresAt: expect.any(String), reason: null, reference: { type: 'task', id: 'task-1' } }]);
    // the same shape as `balance` in /api/auth/me
    expect((await agent.get('/api/auth/me')).body.balance).toEqual(res.body);
    await t.deps.ledger.void({ holdId: `h-${user.id}`, actor: 'system' });
    expect(await booksViolations(t.t.db)).toEqual([]);
  });

  it('leaves out lots past their expiry and does not count them', async () => {
    const { agent, user } = await signedInUser(t.app);
    await fundAccount(t.deps.ledger, user.id, 4_000, new Date(Date.now() + 200));
    await new Promise((r) => setTimeout(r, 300));
    const res = await agent.get('/api/credits/balance');
    expect(res.body.available).toBe(10);
    expect(res.body.lots.map((l: { source: string }) => l.source)).toEqual(['signup_bonus']);
  });
});

describe('balanceJson', () => {
  it('converts millicredits to credits with at most 3 decimals', () => {
    const json = balanceJson({ available: 1_234_567, held: 1, debt: 0, lots: [], holds: [] });
    expect(json).toEqual({ available: 1234.567, held: 0.001, debt: 0, lots: [], holds: [] });
  });
});
