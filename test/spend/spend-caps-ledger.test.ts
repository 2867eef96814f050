import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLedger, type Ledger } from '../../src/ledger/ledger-service.ts';
import { SpendCapExceededError } from '../../src/ledger/ledger-errors.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser, fundAccount } from '../helpers/factories.ts';

let t: TestDatabase;
const C = 1000;
const HOUR = 60 * 86_400_000; // long enough to outlive the injected clock (the ledger check flags overdue holds)

beforeAll(async () => {
  t = await createTestDatabase(40);
});
afterEach(async () => {
  expect(await booksViolations(t.db)).toEqual([]);
});
afterAll(async () => t.drop());

async function activeHolds(userId: string) {
  return t.db('holds').join('accounts', 'accounts.id', 'holds.account_id').where({ user_id: userId, status: 'active' }).count<{ count: string }[]>('* as count');
}

describe.each([
  { path: 'one transaction per operation', groupCommit: false },
  { path: 'group commit', groupCommit: true },
])('spend caps at the hold, $path', ({ groupCommit }) => {
  let now = new Date('2026-11-30T10:00:00Z');
  let ledger: Ledger;
  beforeAll(() => {
    ledger = createLedger(t.db, { groupCommit, clock: () => now });
  });

  it('when 100 reserves of 1 credit race against a 10-credit daily cap with 1,000 credits, exactly 10 are held; a new day resets', async () => {
    now = new Date('2026-11-30T10:00:00Z');
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 1000 * C);
    await t.db('spend_limits').insert({ user_id: user.id, daily_cap: 10 * C });
    const results = await Promise.allSettled(
      Array.from({ length: 100 }, (_, i) =>
        ledger.reserve({ holdId: `cap-${groupCommit}-${user.id}-${i}`, userId: user.id, millicredits: C, timeoutMs: HOUR, actor: 'test' }),
      ),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    const refusals = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason);
    expect(refusals).toHaveLength(90);
    for (const e of refusals) {
      expect(e).toBeInstanceOf(SpendCapExceededError);
      expect(e.data).toMatchObject({ cap: 'daily', limit: 10, spent: 0, held: 10, resetsAt: '2026-12-01T00:00:00.000Z' });
    }
    expect(Number((await activeHolds(user.id))[0]!.count)).toBe(10);
    // Which 10 won the race is not fixed: post and void two of those that did.
    const held = results.flatMap((r, i) => (r.status === 'fulfilled' ? [`cap-${groupCommit}-${user.id}-${i}`] : []));

    // Posting keeps the credits counted (as spent, not held); voiding gives room back.
    await ledger.post({ holdId: held[0]!, millicredits: C, actor: 'test' });
    await expect(ledger.reserve({ holdId: `x-${user.id}`, userId: user.id, millicredits: C, timeoutMs: HOUR, actor: 'test' })).rejects.toMatchObject({
      data: { spent: 1, held: 9 },
    });
    await ledger.void({ holdId: held[1]!, actor: 'test' });
    await ledger.reserve({ holdId: `y-${user.id}`, userId: user.id, millicredits: C, timeoutMs: HOUR, actor: 'test' });

    // The next calendar day (UTC by default) starts empty.
    now = new Date('2026-12-01T00:00:01Z');
    const next = await Promise.allSettled(
      Array.from({ length: 12 }, (_, i) =>
        ledger.reserve({ holdId: `next-${groupCommit}-${user.id}-${i}`, userId: user.id, millicredits: C, timeoutMs: HOUR, actor: 'test' }),
      ),
    );
    expect(next.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
  });

  it('the per-job maximum refuses one large hold and nothing is held; the day is in the user’s time zone', async () => {
    now = new Date('2026-11-30T23:30:00Z');
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 100 * C);
    await t.db('spend_limits').insert({ user_id: user.id, per_job_max: 5 * C, admin_daily_cap: 8 * C, time_zone: 'Europe/Berlin' });
    await expect(ledger.reserve({ holdId: `big-${user.id}`, userId: user.id, millicredits: 6 * C, timeoutMs: HOUR, actor: 'test' })).rejects.toMatchObject({
      code: 'spend_cap_exceeded',
      data: { cap: 'per_job', limit: 5, resetsAt: null },
    });
    expect(Number((await activeHolds(user.id))[0]!.count)).toBe(0);
    // 23:30 UTC is 00:30 on 1 December in Berlin: the day resets at midnight Berlin time.
    await ledger.reserve({ holdId: `a-${user.id}`, userId: user.id, millicredits: 5 * C, timeoutMs: HOUR, actor: 'test' });
    await expect(ledger.reserve({ holdId: `b-${user.id}`, userId: user.id, millicredits: 5 * C, timeoutMs: HOUR, actor: 'test' })).rejects.toMatchObject({
      data: { cap: 'daily', limit: 8, spent: 0, held: 5, resetsAt: '2026-12-01T23:00:00.000Z' },
    });
  });

  it('records each alert threshold once per period, even when room is given back and used again', async () => {
    now = new Date('2026-11-30T10:00:00Z');
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 100 * C);
    await t.db('spend_limits').insert({ user_id: user.id, daily_cap: 10 * C });
    const reserve = (id: string, credits: number) =>
      ledger.reserve({ holdId: `${id}-${groupCommit}-${user.id}`, userId: user.id, millicredits: credits * C, timeoutMs: HOUR, actor: 'test' });
    await reserve('a', 4);
    expect(await t.db('spend_cap_alerts').where({ user_id: user.id }).pluck('threshold')).toEqual([]);
    await reserve('b', 1); // 5 of 10: 50 %
    await ledger.void({ holdId: `b-${groupCommit}-${user.id}`, actor: 'test' });
    await reserve('c', 1); // 50 % again: not recorded twice
    await reserve('d', 4); // 9 of 10: 80 %
    await reserve('e', 1); // 10 of 10: 100 %
    const alerts = await t.db('spend_cap_alerts').where({ user_id: user.id }).orderBy('threshold').select('cap', 'threshold', 'limit_amount', 'used');
    expect(alerts).toEqual([
      { cap: 'daily', threshold: 50, limit_amount: 10 * C, used: 5 * C },
      { cap: 'daily', threshold: 80, limit_amount: 10 * C, used: 9 * C },
      { cap: 'daily', threshold: 100, limit_amount: 10 * C, used: 10 * C },
    ]);
  });
});
