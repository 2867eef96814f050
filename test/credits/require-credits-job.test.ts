import express from 'express';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { requireCredits } from '../../src/credits/require-credits.ts';
import { errorHandler } from '../../src/http/problem.ts';
import { createLedger, type Ledger } from '../../src/ledger/ledger-service.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser, fundAccount } from '../helpers/factories.ts';

let t: TestDatabase;
let ledger: Ledger;
let app: express.Express;
const C = 1000;

/** Routes whose hold is handed to a job created in the hold's own transaction (`settle: 'job'`). */
function jobApp() {
  const a = express();
  a.use((req, _res, next) => {
    req.user = { id: req.get('x-user')!, email: 'x@example.test', name: 'x', role: 'user' };
    next();
  });
  const held = requireCredits(() => 3 * C, { ledger, db: t.db, settle: 'job', topUpUrl: 'http://localhost:3000/pricing' });
  // The "job" is a row in a scratch table, written in the transaction of the hold.
  a.post('/job', held, async (req, res) => {
    await req.credits!.handOff((trx) => trx('scratch_jobs').insert({ hold_id: req.credits!.hold.id }));
    res.status(202).json({ holdId: req.credits!.hold.id });
  });
  a.post('/job-fails', held, async (req) => {
    await req.credits!.handOff(async (trx) => {
      await trx('scratch_jobs').insert({ hold_id: req.credits!.hold.id });
      throw new Error('queue down');
    });
  });
  a.post('/never-hands-off', held, async (_req, res) => {
    res.status(400).json({ nope: true });
  });
  a.use(errorHandler);
  return a;
}

beforeAll(async () => {
  t = await createTestDatabase();
  ledger = createLedger(t.db);
  await t.db.schema.createTable('scratch_jobs', (tb) => tb.text('hold_id').primary());
  app = jobApp();
});
afterEach(async () => expect(await booksViolations(t.db)).toEqual([]));
afterAll(async () => t.drop());

async function noActiveHold(userId: string) {
  // A rollback after the response ends runs just after it: wait until it has.
  for (let i = 0; i < 50 && (await ledger.getBalance(userId)).held !== 0; i++) await new Promise((r) => setTimeout(r, 20));
  return ledger.getBalance(userId);
}

describe("requireCredits with settle: 'job'", () => {
  it('commits the hold together with what the handler created for the job', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const res = await request(app).post('/job').set('x-user', user.id).expect(202);
    expect(await t.db('scratch_jobs').where({ hold_id: res.body.holdId })).toHaveLength(1);
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 7 * C, held: 3 * C });
    await ledger.void({ holdId: res.body.holdId, actor: 'test' });
  });

  it('when creating the job fails, neither the job nor the hold exists', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    await request(app).post('/job-fails').set('x-user', user.id).expect(500);
    expect(await noActiveHold(user.id)).toMatchObject({ available: 10 * C, held: 0 });
    expect(await t.db('holds').join('accounts', 'accounts.id', 'holds.account_id').where('accounts.user_id', user.id)).toEqual([]);
  });

  it('a handler that answers without handing off leaves nothing held', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    await request(app).post('/never-hands-off').set('x-user', user.id).expect(400);
    expect(await noActiveHold(user.id)).toMatchObject({ available: 10 * C, held: 0 });
  });

  it('answers 402 and opens nothing when credits are short', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 2 * C);
    const res = await request(app).post('/job').set('x-user', user.id).expect(402);
    expect(res.body).toMatchObject({ code: 'insufficient_credits', required: 3, available: 2 });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 2 * C, held: 0 });
  });
});
