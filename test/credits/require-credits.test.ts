import express from 'express';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireCredits } from '../../src/credits/require-credits.ts';
import { errorHandler } from '../../src/http/problem.ts';
import { createLedger, type Ledger } from '../../src/ledger/ledger-service.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser, fundAccount, type TestUser } from '../helpers/factories.ts';

let t: TestDatabase;
let ledger: Ledger;
let app: express.Express;
const C = 1000;

/** A tiny app with priced routes, the user taken from a header (auth is not under test here). */
function pricedApp() {
  const a = express();
  a.use((req, _res, next) => {
    const id = req.get('x-user');
    if (id) req.user = { id, email: 'x@example.test', name: 'x', role: 'user' };
    next();
  });
  const priced = (cost: number) => requireCredits(() => cost, { ledger, topUpUrl: 'http://localhost:3000/pricing' });
  a.post('/report', priced(3 * C), async (req, res) => {
    req.credits!.report(2 * C);
    res.json({ ok: true });
  });
  a.post('/settle-first', priced(3 * C), async (req, res) => {
    await req.credits!.post(1500);
    res.json({ available: (await ledger.getBalance(req.user!.id)).available });
  });
  a.post('/fails', priced(3 * C), async () => {
    throw new Error('boom');
  });
  a.post('/job', priced(3 * C), async (req, res) => {
    req.credits!.handOff();
    res.status(202).json({ holdId: req.credits!.hold.id });
  });
  a.use(errorHandler);
  return a;
}

async function settled(userId: string) {
  // 'finish' settlement runs right after the response; wait until no hold is active.
  for (let i = 0; i < 50; i++) {
    const b = await ledger.getBalance(userId);
    if (b.held === 0) return b;
    await new Promise((r) => setTimeout(r, 20));
  }
  return ledger.getBalance(userId);
}

let user: TestUser;
beforeAll(async () => {
  t = await createTestDatabase();
  ledger = createLedger(t.db);
  app = pricedApp();
});
afterEach(async () => expect(await booksViolations(t.db)).toEqual([]));
afterAll(async () => t.drop());

describe('requireCredits', () => {
  it('posts the cost the handler reports and releases the rest', async () => {
    user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    await request(app).post('/report').set('x-user', user.id).expect(200);
    expect(await settled(user.id)).toMatchObject({ available: 8 * C, held: 0 });
  });

  it('lets the handler settle before it responds', async () => {
    user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const res = await request(app).post('/settle-first').set('x-user', user.id).expect(200);
    expect(res.body.available).toBe(8500);
  });

  it('voids the hold when the handler fails: the user pays nothing', async () => {
    user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    await request(app).post('/fails').set('x-user', user.id).expect(500);
    expect(await settled(user.id)).toMatchObject({ available: 10 * C, held: 0 });
  });

  it('leaves a handed-off hold to its job', async () => {
    user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const res = await request(app).post('/job').set('x-user', user.id).expect(202);
    await new Promise((r) => setTimeout(r, 100));
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 7 * C, held: 3 * C });
    await ledger.void({ holdId: res.body.holdId, actor: 'test' });
  });

  it('answers 402 with required, available and topUpUrl, and holds nothing, when credits are short', async () => {
    user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 2 * C);
    const res = await request(app).post('/report').set('x-user', user.id).expect(402);
    expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(res.body).toMatchObject({ status: 402, required: 3, available: 2, topUpUrl: 'http://localhost:3000/pricing' });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 2 * C, held: 0 });
  });

  it('holds once for a replayed Idempotency-Key', async () => {
    user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const a = await request(app).post('/job').set('x-user', user.id).set('Idempotency-Key', 'k-1').expect(202);
    const b = await request(app).post('/job').set('x-user', user.id).set('Idempotency-Key', 'k-1').expect(202);
    expect(b.body.holdId).toBe(a.body.holdId);
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 7 * C, held: 3 * C });
    await ledger.void({ holdId: a.body.holdId, actor: 'test' });
  });

  it('never overspends when 20 priced requests race for 10 credits', async () => {
    user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const results = await Promise.all(Array.from({ length: 20 }, () => request(app).post('/job').set('x-user', user.id)));
    expect(results.filter((r) => r.status === 202)).toHaveLength(3);
    expect(results.filter((r) => r.status === 402)).toHaveLength(17);
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: C, held: 9 * C });
  });
});

describe('estimate API', () => {
  it('prices OCR at 1 credit per task plus 0.5 per page, and refuses bad input', async () => {
    const { buildTestApp } = await import('../helpers/app.ts');
    const ta = await buildTestApp();
    try {
      const ok = await request(ta.app).post('/api/credits/estimate').send({ operation: 'ocr', pages: 6 }).expect(200);
      expect(ok.body).toEqual({ operation: 'ocr', credits: 4, pages: 6 });
      const bad = await request(ta.app).post('/api/credits/estimate').send({ operation: 'ocr', pages: 0, extra: 1 }).expect(400);
      expect(bad.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['body.extra', 'body.pages']);
      await request(ta.app).post('/api/credits/estimate').send({ operation: 'nope', pages: 1 }).expect(400);
    } finally {
      await ta.close();
    }
  });
});
