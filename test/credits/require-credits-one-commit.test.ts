import express from 'express';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireCredits } from '../../src/credits/require-credits.ts';
import { errorHandler } from '../../src/http/problem.ts';
import { createLedger, type Ledger } from '../../src/ledger/ledger-service.ts';
import { buildTestApp } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser, fundAccount } from '../helpers/factories.ts';
import { signedInUser } from '../auth/auth-helpers.ts';

let t: TestDatabase;
let ledger: Ledger;
let app: express.Express;
const C = 1000;

/** Priced routes whose price is known up front (`settle: 'one-commit'`); the user comes from a header. */
function pricedApp() {
  const a = express();
  a.use((req, _res, next) => {
    const id = req.get('x-user');
    if (id) req.user = { id, email: 'x@example.test', name: 'x', role: 'user' };
    next();
  });
  const priced = requireCredits(() => 2 * C, { ledger, topUpUrl: 'http://localhost:3000/pricing', settle: 'one-commit' });
  a.post('/ok', priced, (req, res) => {
    res.json({ replayed: req.credits!.replayed, transferId: req.credits!.charge!.id });
  });
  a.post('/refused', priced, (_req, res) => {
    res.status(422).json({ refused: true });
  });
  const oddReason = "it's a \\ 'quoted' \"reason\"; DROP TABLE lots; --";
  a.post(
    '/odd',
    requireCredits(() => 2 * C, { ledger, topUpUrl: 'http://localhost:3000/pricing', settle: 'one-commit', reason: oddReason, reference: () => ({ type: "o'k", id: '\\x' }) }),
    (_req, res) => {
      res.json({ reason: oddReason });
    },
  );
  a.post('/fails', priced, async () => {
    throw new Error('boom');
  });
  a.use(errorHandler);
  return a;
}

/** Waits until the request's transaction ended (committed or rolled back): it holds the account row. */
async function settled(userId: string) {
  await t.db.transaction(async (trx) => {
    await trx('accounts').where({ user_id: userId }).forUpdate().first();
  });
  return ledger.getBalance(userId);
}

const usageOf = (userId: string) =>
  t.db('transfers').join('accounts', 'accounts.id', 'transfers.debit_account_id').where({ user_id: userId, kind: 'usage' }).select('transfers.*');

beforeAll(async () => {
  t = await createTestDatabase();
  ledger = createLedger(t.db);
  app = pricedApp();
});
afterEach(async () => expect(await booksViolations(t.db)).toEqual([]));
afterAll(async () => t.drop());

describe("requireCredits with settle: 'one-commit' (price known up front)", () => {
  it('charges the price in one usage transfer, with no hold', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const res = await request(app).post('/ok').set('x-user', user.id).expect(200);
    expect(res.body.replayed).toBe(false);
    expect(await settled(user.id)).toMatchObject({ available: 8 * C, held: 0 });
    expect((await usageOf(user.id)).map((r) => [r.id, r.amount])).toEqual([[res.body.transferId, 2 * C]]);
    expect(await t.db('holds').join('accounts', 'accounts.id', 'holds.account_id').where({ user_id: user.id })).toEqual([]);
  });

  it('charges nothing when the handler fails or answers an error status', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    await request(app).post('/fails').set('x-user', user.id).expect(500);
    expect(await settled(user.id)).toMatchObject({ available: 10 * C, held: 0 });
    await request(app).post('/refused').set('x-user', user.id).expect(422);
    expect(await settled(user.id)).toMatchObject({ available: 10 * C, held: 0 });
    expect(await usageOf(user.id)).toEqual([]);
  });

  it('answers 402 with required, available and topUpUrl before the handler runs', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, C);
    const res = await request(app).post('/ok').set('x-user', user.id).expect(402);
    expect(res.body).toMatchObject({ required: 2, available: 1, topUpUrl: 'http://localhost:3000/pricing' });
    expect(await settled(user.id)).toMatchObject({ available: C });
  });

  it('keeps quotes and backslashes in the reason and reference exactly (they travel as SQL literals)', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const res = await request(app).post('/odd').set('x-user', user.id).expect(200);
    await settled(user.id);
    const [row] = await usageOf(user.id);
    expect(row).toMatchObject({ reason: res.body.reason, reference_type: "o'k", reference_id: '\\x', amount: 2 * C });
    expect(await t.db('lots').count({ n: '*' })).not.toEqual([{ n: 0 }]);
  });

  it('charges once per Idempotency-Key', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const first = await request(app).post('/ok').set('x-user', user.id).set('Idempotency-Key', 'k-1').expect(200);
    await settled(user.id);
    const again = await request(app).post('/ok').set('x-user', user.id).set('Idempotency-Key', 'k-1').expect(200);
    expect(again.body).toEqual({ replayed: true, transferId: first.body.transferId });
    expect(await settled(user.id)).toMatchObject({ available: 8 * C });
  });

  it('when 12 requests race for 5 requests’ worth of credits, exactly 5 are served and charged', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const statuses = await Promise.all(Array.from({ length: 12 }, () => request(app).post('/ok').set('x-user', user.id).then((r) => r.status)));
    expect(statuses.filter((s) => s === 200)).toHaveLength(5);
    expect(statuses.filter((s) => s === 402)).toHaveLength(7);
    expect(await settled(user.id)).toMatchObject({ available: 0, held: 0 });
    expect(await usageOf(user.id)).toHaveLength(5);
  });
});

describe('bench routes', () => {
  it('are not mounted unless BENCH_ROUTES=on; when on, the priced one charges 1 credit', async () => {
    const off = await buildTestApp();
    try {
      const { agent } = await signedInUser(off.app);
      expect((await agent.get('/api/bench/noop')).status).toBe(404);
      expect((await agent.post('/api/bench/priced')).status).toBe(404);
    } finally {
      await off.close();
    }
    const on = await buildTestApp({ env: { BENCH_ROUTES: 'on' } });
    try {
      expect((await request(on.app).get('/api/bench/noop')).status).toBe(401);
      const { agent, user } = await signedInUser(on.app);
      expect((await agent.get('/api/bench/noop')).status).toBe(204);
      const before = (await on.deps.ledger.getBalance(user.id)).available;
      expect((await agent.post('/api/bench/priced')).status).toBe(200);
      await on.t.db.transaction(async (trx) => void (await trx('accounts').where({ user_id: user.id }).forUpdate().first()));
      expect((await on.deps.ledger.getBalance(user.id)).available).toBe(before - C);
      expect(await booksViolations(on.t.db)).toEqual([]);
    } finally {
      await on.close();
    }
  });
});
