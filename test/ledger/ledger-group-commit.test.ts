import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain-error.ts';
import { createGroupCommit } from '../../src/ledger/group-commit.ts';
import { createLedger, type Ledger } from '../../src/ledger/ledger-service.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser, fundAccount } from '../helpers/factories.ts';

let t: TestDatabase;
const C = 1000;
const HOUR = 3_600_000;

beforeAll(async () => {
  t = await createTestDatabase(40);
});
afterEach(async () => {
  expect(await booksViolations(t.db)).toEqual([]);
});
afterAll(async () => t.drop());

/** The holds of a user's account, straight from the table. */
async function holdRows(userId: string) {
  return t.db('holds').join('accounts', 'accounts.id', 'holds.account_id').where({ user_id: userId }).select('holds.*');
}

// The concurrency proofs of ledger.test.ts, on each path: one transaction per operation, and
// group commit (operations of one account that arrive together share a transaction).
describe.each([
  { path: 'one transaction per operation', groupCommit: false },
  { path: 'group commit', groupCommit: true },
])('concurrency, $path', ({ groupCommit }) => {
  let ledger: Ledger;
  beforeAll(() => {
    ledger = createLedger(t.db, { groupCommit });
  });

  it('when 200 reserves of 1 credit race for 50 available, exactly 50 win', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 50 * C);
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) =>
        ledger.reserve({ holdId: `race-${user.id}-${i}`, userId: user.id, millicredits: C, timeoutMs: HOUR, actor: 'system' }),
      ),
    );
    const lost = results.filter((r) => r.status === 'rejected');
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(50);
    for (const r of lost) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'insufficient_credits' });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 0, held: 50 * C });
    expect(await holdRows(user.id)).toHaveLength(50);
  });

  it('when two posts of the same hold race, one wins and the credits are spent once', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const h = await ledger.reserve({ holdId: `pp-${user.id}`, userId: user.id, millicredits: 5 * C, timeoutMs: HOUR, actor: 'system' });
    const results = await Promise.allSettled([
      ledger.post({ holdId: h.id, millicredits: 5 * C, actor: 'a' }),
      ledger.post({ holdId: h.id, millicredits: 4 * C, actor: 'b' }),
    ]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect([4 * C, 5 * C]).toContain(10 * C - (await ledger.getBalance(user.id)).available);
    expect(await t.db('transfers').where({ hold_id: h.id }).count({ n: '*' })).toEqual([{ n: 1 }]);
  });

  it('a post racing a void: exactly one of them takes effect', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const h = await ledger.reserve({ holdId: `pv-${user.id}`, userId: user.id, millicredits: 5 * C, timeoutMs: HOUR, actor: 'system' });
    const [p, v] = await Promise.allSettled([ledger.post({ holdId: h.id, millicredits: 5 * C, actor: 'a' }), ledger.void({ holdId: h.id, actor: 'b' })]);
    expect([p.status, v.status].sort()).toEqual(['fulfilled', 'rejected']);
    const status = (await ledger.findHold(h.id))?.status;
    expect((await ledger.getBalance(user.id)).available).toBe(status === 'posted' ? 5 * C : 10 * C);
  });

  it('the same grant id sent 20 times at once grants once; the others are replays', async () => {
    const user = await buildUser(t.db);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => ledger.grant({ transferId: `once-${user.id}`, userId: user.id, millicredits: 10 * C, kind: 'signup_bonus', actor: 'system' })),
    );
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect(new Set(results.map((r) => r.lot.id)).size).toBe(1);
    expect((await ledger.getBalance(user.id)).available).toBe(10 * C);
  });

  it('one grant id sent for two users at the same moment: one grant, one 409', async () => {
    const [a, b] = [await buildUser(t.db), await buildUser(t.db)];
    const id = `shared-${a.id}`;
    const results = await Promise.allSettled(
      [a, b].map((u) => ledger.grant({ transferId: id, userId: u.id, millicredits: 3 * C, kind: 'bonus', actor: 'system' })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toMatchObject({ code: 'idempotency_conflict' });
    const balances = [(await ledger.getBalance(a.id)).available, (await ledger.getBalance(b.id)).available].sort();
    expect(balances).toEqual([0, 3 * C]);
  });
});

describe('group commit', () => {
  it('applies what arrives together in one transaction, each item with its own outcome', async () => {
    const ledger = createLedger(t.db);
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 5 * C);
    await new Promise((r) => setTimeout(r, 10)); // the grant's queue has wound down
    const [first, ...rest] = [
      ledger.reserve({ holdId: `g1-${user.id}`, userId: user.id, millicredits: C, timeoutMs: HOUR, actor: 'system' }),
      ledger.reserve({ holdId: `g2-${user.id}`, userId: user.id, millicredits: 2 * C, timeoutMs: HOUR, actor: 'system' }),
      ledger.reserve({ holdId: `g3-${user.id}`, userId: user.id, millicredits: 9 * C, timeoutMs: HOUR, actor: 'system' }), // short: fails alone
      ledger.debit({ transferId: `g4-${user.id}`, userId: user.id, millicredits: 2 * C, kind: 'usage', actor: 'system' }),
      ledger.reserve({ holdId: `g2-${user.id}`, userId: user.id, millicredits: 3 * C, timeoutMs: HOUR, actor: 'system' }), // reused id: 409 alone
    ];
    const settled = await Promise.allSettled([first, ...rest]);
    expect(settled.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as DomainError).code))).toEqual(['ok', 'ok', 'insufficient_credits', 'ok', 'idempotency_conflict']);
    // The last four arrived while the first was in flight: one transaction for all of them.
    const xmins = await t.db('holds').whereIn('id', [`g1-${user.id}`, `g2-${user.id}`]).select(t.db.raw('xmin::text AS x')).orderBy('id');
    const debitXmin = await t.db('transfers').where({ id: `g4-${user.id}` }).first(t.db.raw('xmin::text AS x'));
    expect(xmins[0].x).not.toBe(xmins[1].x);
    expect(debitXmin.x).toBe(xmins[1].x);
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 0, held: 3 * C });
  });

  it('merges identical operations of one batch: applied once, every caller gets the outcome', async () => {
    const calls: number[] = [];
    const group = createGroupCommit<{ id: string }, { id: string; replayed: boolean }>({
      applyOne: async (op) => {
        calls.push(1);
        await new Promise((r) => setTimeout(r, 20));
        return { id: op.id, replayed: false };
      },
      applyMany: async (ops) => {
        calls.push(ops.length);
        return ops.map((op) => ({ id: op.id, replayed: false }));
      },
    });
    const results = await Promise.all(['a', 'b', 'b', 'b', 'c'].map((id) => group.submit('k', { id })));
    expect(calls).toEqual([1, 2]); // 'a' alone, then 'b' (once) and 'c' together
    expect(results.map((r) => `${r.id}${r.replayed ? '*' : ''}`)).toEqual(['a', 'b', 'b*', 'b*', 'c']);
    await new Promise((r) => setTimeout(r, 10));
    expect(group.busyKeys).toBe(0);
  });

  it('when a batch fails unexpectedly, its items are applied one by one and only the bad one fails', async () => {
    const group = createGroupCommit<{ id: string }, string>({
      applyOne: async (op) => {
        if (op.id === 'bad') throw new Error('bad item');
        return `done ${op.id}`;
      },
      applyMany: async () => {
        throw new Error('batch failed');
      },
    });
    const settled = await Promise.allSettled(['x', 'y', 'bad', 'z'].map((id) => group.submit('k', { id })));
    expect(settled.map((r) => (r.status === 'fulfilled' ? r.value : (r.reason as Error).message))).toEqual(['done x', 'done y', 'bad item', 'done z']);
  });

  it('32 clients on one account, random reserve/post/void/debit: every invariant holds', async () => {
    const ledger = createLedger(t.db);
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 300 * C);
    await fundAccount(ledger, user.id, 200 * C, new Date(Date.now() + HOUR));
    const open: string[] = [];
    const outcomes = { posted: new Map<string, number>(), voided: new Set<string>(), spent: 0, refused: 0 };
    let seq = 0;
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    await Promise.all(
      Array.from({ length: 32 }, async (_, client) => {
        for (let step = 0; step < 25; step++) {
          const r = random();
          const amount = 1 + Math.floor(random() * 5 * C);
          try {
            if (r < 0.4 || open.length === 0) {
              const hold = await ledger.reserve({ holdId: `rnd-${user.id}-${client}-${seq++}`, userId: user.id, millicredits: amount, timeoutMs: HOUR, actor: 'test' });
              open.push(hold.id);
            } else if (r < 0.65) {
              const holdId = open.splice(Math.floor(random() * open.length), 1)[0]!;
              const hold = (await ledger.findHold(holdId))!;
              const posted = await ledger.post({ holdId, millicredits: Math.floor(hold.amount * random()), actor: 'test' });
              expect(outcomes.posted.has(holdId) || outcomes.voided.has(holdId)).toBe(false);
              outcomes.posted.set(holdId, posted.hold.postedAmount!);
            } else if (r < 0.8) {
              const holdId = open.splice(Math.floor(random() * open.length), 1)[0]!;
              await ledger.void({ holdId, actor: 'test' });
              expect(outcomes.posted.has(holdId) || outcomes.voided.has(holdId)).toBe(false);
              outcomes.voided.add(holdId);
            } else {
              await ledger.debit({ transferId: `rnd-d-${user.id}-${client}-${seq++}`, userId: user.id, millicredits: amount, kind: 'usage', actor: 'test' });
              outcomes.spent += amount;
            }
          } catch (err) {
            if (!(err instanceof DomainError) || err.code !== 'insufficient_credits') throw err;
            outcomes.refused++;
          }
          const b = await ledger.getBalance(user.id);
          expect(b.available).toBeGreaterThanOrEqual(0);
          expect(b.held).toBe(b.holds.reduce((s, h) => s + h.amount, 0));
        }
      }),
    );
    expect(await booksViolations(t.db)).toEqual([]);
    const rows = await holdRows(user.id);
    // Group commit did group: fewer transactions than holds.
    const xmins = await t.db('holds').whereIn('id', rows.map((h) => h.id)).select(t.db.raw('xmin::text AS x'));
    expect(new Set(xmins.map((r: { x: string }) => r.x)).size).toBeLessThan(rows.length);
    const byId = new Map(rows.map((h) => [h.id as string, h]));
    for (const [id, amount] of outcomes.posted) expect(byId.get(id)).toMatchObject({ status: 'posted', posted_amount: amount });
    for (const id of outcomes.voided) expect(byId.get(id)).toMatchObject({ status: 'voided' });
    for (const id of open) expect(byId.get(id)).toMatchObject({ status: 'active' });
    // Each posted hold has at most one usage transfer, and the books add up to what was done.
    const usage = await t.db('transfers').where({ kind: 'usage' }).whereIn('hold_id', [...outcomes.posted.keys()]).select('hold_id', 'amount');
    expect(usage.length).toBe([...outcomes.posted.values()].filter((a) => a > 0).length);
    const postedTotal = [...outcomes.posted.values()].reduce((s, a) => s + a, 0);
    const heldTotal = open.reduce((s, id) => s + Number(byId.get(id).amount), 0);
    const balance = await ledger.getBalance(user.id);
    expect(balance.available + balance.held).toBe(500 * C - postedTotal - outcomes.spent);
    expect(balance.held).toBe(heldTotal);
    expect(outcomes.refused + outcomes.posted.size + outcomes.voided.size).toBeGreaterThan(0);
  });
});
