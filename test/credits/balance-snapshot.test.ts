import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations, fundAccount } from '../helpers/factories.ts';
import { signedInUser } from '../auth/auth-helpers.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.close());

const milli = (credits: number) => Math.round(credits * 1000);

describe('GET /api/credits/balance reads one snapshot (issue 9, defect 8)', () => {
  it('while holds are placed, posted and voided, `held` always equals the sum of the listed holds', async () => {
    const { agent, user } = await signedInUser(t.app);
    await fundAccount(t.deps.ledger, user.id, 1_000_000);
    const { ledger } = t.deps;
    let running = true;
    let n = 0;
    const churn = async (worker: number) => {
      while (running) {
        const hold = await ledger.reserve({ holdId: `snap-${user.id}-${worker}-${n++}`, userId: user.id, millicredits: 1000 + worker, timeoutMs: 60_000, actor: 'system' });
        if (n % 2 === 0) await ledger.post({ holdId: hold.id, millicredits: 500, actor: 'system' });
        else await ledger.void({ holdId: hold.id, actor: 'system' });
      }
    };
    const workers = Array.from({ length: 6 }, (_, w) => churn(w));
    const mismatches: Array<{ held: number; listed: number }> = [];
    try {
      for (let i = 0; i < 150; i++) {
        const res = await agent.get('/api/credits/balance');
        expect(res.status).toBe(200);
        const listed = (res.body.holds as Array<{ amount: number }>).reduce((s, h) => s + milli(h.amount), 0);
        if (milli(res.body.held) !== listed) mismatches.push({ held: milli(res.body.held), listed });
        const lots = (res.body.lots as Array<{ remaining: number }>).reduce((s, l) => s + milli(l.remaining), 0);
        expect(milli(res.body.available) + milli(res.body.held)).toBe(lots);
      }
    } finally {
      running = false;
      await Promise.all(workers);
    }
    expect(n).toBeGreaterThan(20); // the reads really ran during the churn
    expect(mismatches).toEqual([]);
    expect(await booksViolations(t.t.db)).toEqual([]);
  });
});
