import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain-error.ts';
import { createGroupCommit } from '../../src/ledger/group-commit.ts';
import { createKnex } from '../../src/db/database.ts';
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
  { path: 'one transaction per operation', groupCommit: false, lanes: undefined },
  { path: 'group commit', groupCommit: true, lanes: undefined },
  { path: 'group commit, every account in one lane', groupCommit: true, lanes: 1 },
])('concurrency, $path', ({ groupCommit, lanes }) => {
  let ledger: Ledger;
  beforeAll(() => {
    ledger = createLedger(t.db, { groupCommit, groupCommitLanes: lanes });
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

  it('operations of several accounts that arrive together share one transaction, each with its own outcome', async () => {
    const ledger = createLedger(t.db, { groupCommitLanes: 1 });
    const [a, b, c, d] = await Promise.all(Array.from({ length: 4 }, () => buildUser(t.db)));
    for (const u of [a!, b!, c!, d!]) await fundAccount(ledger, u.id, 2 * C);
    await new Promise((r) => setTimeout(r, 10)); // the grants' queue has wound down
    const reserve = (u: { id: string }, credits: number) =>
      ledger.reserve({ holdId: `multi-${u.id}`, userId: u.id, millicredits: credits * C, timeoutMs: HOUR, actor: 'system' });
    // a's goes at once; b's, c's and d's arrive while it is in flight (d asks for more than it has).
    const settled = await Promise.allSettled([reserve(a!, 1), reserve(b!, 1), reserve(c!, 2), reserve(d!, 3)]);
    expect(settled.map((r) => (r.status === 'fulfilled' ? 'ok' : (r.reason as DomainError).code))).toEqual(['ok', 'ok', 'ok', 'insufficient_credits']);
    const xmins = await t.db('holds').whereIn('id', [a!, b!, c!].map((u) => `multi-${u.id}`)).select('id', t.db.raw('xmin::text AS x'));
    const xminOf = (u: { id: string }) => xmins.find((r: { id: string }) => r.id === `multi-${u.id}`).x;
    expect(xminOf(b!)).toBe(xminOf(c!));
    expect(xminOf(a!)).not.toBe(xminOf(b!));
    for (const [u, held] of [[a!, 1], [b!, 1], [c!, 2], [d!, 0]] as const) {
      expect(await ledger.getBalance(u.id)).toMatchObject({ held: held * C, available: (2 - held) * C });
    }
  });

  it('an account locked elsewhere does not hold up the other accounts of its batch', async () => {
    const ledger = createLedger(t.db, { groupCommitLanes: 1 });
    const [busy, free, first] = await Promise.all(Array.from({ length: 3 }, () => buildUser(t.db)));
    for (const u of [busy!, free!, first!]) await fundAccount(ledger, u.id, 5 * C);
    // A one-commit debit (a priced request at work) holds busy's account lock.
    const open = await ledger.openDebit({ transferId: `open-${busy!.id}`, userId: busy!.id, millicredits: C, kind: 'usage', actor: 'system' });
    const done: string[] = [];
    const track = (name: string, p: Promise<unknown>) => p.then(() => done.push(name));
    const inFlight = track('first', ledger.debit({ transferId: `first-${first!.id}`, userId: first!.id, millicredits: C, kind: 'usage', actor: 'system' }));
    // These two arrive while the first is in flight: one batch, busy's part of it deferred.
    const busyDebit = track('busy', ledger.debit({ transferId: `later-${busy!.id}`, userId: busy!.id, millicredits: C, kind: 'usage', actor: 'system' }));
    const freeDebit = track('free', ledger.debit({ transferId: `later-${free!.id}`, userId: free!.id, millicredits: C, kind: 'usage', actor: 'system' }));
    await Promise.all([inFlight, freeDebit]);
    await new Promise((r) => setTimeout(r, 50));
    expect(done).toEqual(['first', 'free']); // busy's debit still waits for the lock, alone
    await open.commit();
    await busyDebit;
    expect(done).toEqual(['first', 'free', 'busy']);
    expect((await ledger.getBalance(busy!.id)).available).toBe(3 * C);
    expect((await ledger.getBalance(free!.id)).available).toBe(4 * C);
  });

  it('a lane waits at most briefly for one account locked elsewhere, then goes on with the others', async () => {
    const ledger = createLedger(t.db, { groupCommitLanes: 1 });
    const [busy, free] = await Promise.all(Array.from({ length: 2 }, () => buildUser(t.db)));
    for (const u of [busy!, free!]) await fundAccount(ledger, u.id, 5 * C);
    await new Promise((r) => setTimeout(r, 10)); // the grants' queue has wound down
    const open = await ledger.openDebit({ transferId: `open2-${busy!.id}`, userId: busy!.id, millicredits: C, kind: 'usage', actor: 'system' });
    const done: string[] = [];
    // busy's debit goes alone, waits for the lock, gives up after 50 ms and moves to a queue of its own.
    const busyDebit = ledger.debit({ transferId: `alone-${busy!.id}`, userId: busy!.id, millicredits: C, kind: 'usage', actor: 'system' }).then(() => done.push('busy'));
    const freeDebit = ledger.debit({ transferId: `after-${free!.id}`, userId: free!.id, millicredits: C, kind: 'usage', actor: 'system' }).then(() => done.push('free'));
    await freeDebit;
    expect(done).toEqual(['free']);
    await open.commit();
    await busyDebit;
    expect(done).toEqual(['free', 'busy']);
    expect((await ledger.getBalance(busy!.id)).available).toBe(3 * C);
  });

  it('two processes batching the same accounts in different orders never deadlock', async () => {
    // Two ledgers on a pool of their own: two processes. Closing the pool makes its backends report
    // their statistics (the deadlock count) as they exit.
    const db = createKnex(t.url, 20);
    const processes = [createLedger(db, { groupCommitLanes: 1 }), createLedger(db, { groupCommitLanes: 1 })];
    const users = await Promise.all(Array.from({ length: 6 }, () => buildUser(t.db)));
    for (const u of users) await fundAccount(processes[0]!, u.id, 1000 * C);
    // Owners with no account yet: their first grants, from both processes at once, create it.
    const newcomers = await Promise.all(Array.from({ length: 3 }, () => buildUser(t.db)));
    const deadlocks = async () => {
      await t.db.raw('SELECT pg_stat_clear_snapshot()');
      return Number((await t.db.raw('SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()')).rows[0].deadlocks);
    };
    const before = await deadlocks();
    let seed = 7;
    const random = () => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    let n = 0;
    const charged = new Map(users.map((u) => [u.id, 0]));
    const granted = new Map(newcomers.map((u) => [u.id, 0]));
    try {
      await Promise.all(
        processes.flatMap((ledger, p) =>
          Array.from({ length: 6 }, async (_, client) => {
            for (let step = 0; step < 20; step++) {
              if (random() < 0.2) {
                const u = newcomers[Math.floor(random() * newcomers.length)]!;
                await ledger.grant({ transferId: `new-${p}-${client}-${n++}`, userId: u.id, millicredits: C, kind: 'bonus', actor: 'test' });
                granted.set(u.id, granted.get(u.id)! + C);
                continue;
              }
              const u = users[Math.floor(random() * users.length)]!;
              const credits = 1 + Math.floor(random() * 3);
              const hold = await ledger.reserve({ holdId: `x-${p}-${client}-${n++}-${u.id}`, userId: u.id, millicredits: credits * C, timeoutMs: HOUR, actor: 'test' });
              // The post goes through the other process, which did not reserve the hold.
              await processes[1 - p]!.post({ holdId: hold.id, millicredits: credits * C, actor: 'test' });
              charged.set(u.id, charged.get(u.id)! + credits * C);
            }
          }),
        ),
      );
    } finally {
      await db.destroy();
    }
    const reader = createLedger(t.db);
    for (const u of users) expect(await reader.getBalance(u.id)).toMatchObject({ held: 0, available: 1000 * C - charged.get(u.id)! });
    for (const u of newcomers) expect((await reader.getBalance(u.id)).available).toBe(granted.get(u.id));
    await new Promise((r) => setTimeout(r, 100));
    expect(await deadlocks()).toBe(before);
  });

  it('a key whose account is busy elsewhere keeps its order: its later operations wait behind the deferred one', async () => {
    let release!: () => void;
    const unlocked = new Promise<void>((r) => (release = r)); // busy's lock, held elsewhere until release()
    let locked = true;
    void unlocked.then(() => (locked = false));
    const applied: string[] = [];
    const group = createGroupCommit<{ key: string; id: string }, { id: string; deferred?: boolean }>({
      applyOne: async (op) => {
        if (op.key === 'busy') await unlocked;
        applied.push(op.id);
        return { id: op.id };
      },
      applyMany: async (ops, wait) => {
        if (wait === 'until-free' && ops.some((op) => op.key === 'busy')) await unlocked;
        await new Promise((r) => setTimeout(r, 10)); // in flight a while
        // A lane's batch of busy alone waits briefly, then fails; with other keys, busy's ops are deferred.
        if (wait === 'briefly' && locked && ops.some((op) => op.key === 'busy')) throw new Error('canceling statement due to lock timeout');
        return ops.map((op) => {
          if (wait === 'never' && locked && op.key === 'busy') return { id: op.id, deferred: true };
          applied.push(op.id);
          return { id: op.id };
        });
      },
      isDeferred: (o) => o.deferred === true,
      lanes: 1,
      maxBatch: 1,
    });
    // busy-1 goes first; free-0 and busy-2 wait in the lane behind it.
    const submitted = [
      group.submit('busy', { key: 'busy', id: 'busy-1' }),
      group.submit('free', { key: 'free', id: 'free-0' }),
      group.submit('busy', { key: 'busy', id: 'busy-2' }),
    ];
    // busy-1 fails after 10 ms and moves to busy's own queue; the lane goes on with free-0. busy-3
    // arrives meanwhile, while busy-2 has not been reached in the lane yet.
    await new Promise((r) => setTimeout(r, 15));
    submitted.push(group.submit('busy', { key: 'busy', id: 'busy-3' }));
    await submitted[1];
    expect(applied).toEqual(['free-0']); // the lane went on without busy
    release();
    await Promise.all(submitted);
    expect(applied).toEqual(['free-0', 'busy-1', 'busy-2', 'busy-3']);
    await new Promise((r) => setTimeout(r, 10));
    expect(group.busyKeys).toBe(0);
  });

  it('own queues are few at a time: a failed batch of many keys does not take a connection each', async () => {
    let inFlight = 0;
    let most = 0;
    const group = createGroupCommit<{ key: string }, string>({
      applyOne: async (op) => {
        inFlight++;
        most = Math.max(most, inFlight);
        await new Promise((r) => setTimeout(r, 5));
        inFlight--;
        return op.key;
      },
      applyMany: async (ops, wait) => {
        if (wait !== 'until-free') throw new Error('deadlock detected'); // the lane's batch fails
        return ops.map((op) => op.key);
      },
      isDeferred: () => false,
      lanes: 1,
    });
    const keys = ['a', ...Array.from({ length: 12 }, (_, i) => `k${i}`)];
    expect(await Promise.all(keys.map((key) => group.submit(key, { key })))).toEqual(keys);
    expect(most).toBe(2); // 2 per lane
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

  it('lanes: different keys run side by side, and one key stays in its lane while its callers keep sending', async () => {
    let inFlight = 0;
    let most = 0;
    let hotInFlight = 0;
    let hotMost = 0;
    let hotAlone = 0;
    const run = async (ops: Array<{ key: string; n: number }>) => {
      const hot = ops.some((o) => o.key === 'hot');
      if (hot && ops.length === 1) hotAlone++;
      inFlight++;
      if (hot) hotInFlight++;
      most = Math.max(most, inFlight);
      hotMost = Math.max(hotMost, hotInFlight);
      await new Promise((r) => setTimeout(r, 2));
      inFlight--;
      if (hot) hotInFlight--;
      return ops.map((o) => `${o.key}${o.n}`);
    };
    const group = createGroupCommit<{ key: string; n: number }, string>({ applyOne: async (op) => (await run([op]))[0]!, applyMany: run, lanes: 2 });
    const client = async (key: string) => {
      for (let n = 0; n < 30; n++) expect(await group.submit(key, { key, n })).toBe(`${key}${n}`);
    };
    // Eight callers of one hot key, the other lane idle: they stay together, one batch of all eight
    // after another, rather than the quickest caller leaping to the idle lane alone each time.
    await Promise.all(Array.from({ length: 8 }, () => client('hot')));
    expect(hotAlone).toBeLessThanOrEqual(2);
    expect(hotMost).toBe(1); // never two transactions of the hot key at once
    expect(most).toBe(1);
    // Two keys: both lanes work.
    await Promise.all([client('a'), client('b')]);
    expect(most).toBe(2);
    await new Promise((r) => setTimeout(r, 10));
    expect(group.busyKeys).toBe(0);
  });

  it('an item the batch defers is applied on its own, and the queue goes on without it', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const group = createGroupCommit<{ id: string }, { id: string; deferred?: boolean }>({
      applyOne: async (op) => {
        if (op.id === 'late') await gate;
        return { id: op.id };
      },
      applyMany: async (ops) => ops.map((op) => (op.id === 'late' ? { id: op.id, deferred: true } : { id: op.id })),
      isDeferred: (o) => o.deferred === true,
    });
    const order: string[] = [];
    const all = ['a', 'late', 'b', 'c'].map((id) => group.submit('k', { id }).then((o) => order.push(o.id)));
    await new Promise((r) => setTimeout(r, 20));
    expect(order).toEqual(['a', 'b', 'c']);
    release();
    await Promise.all(all);
    expect(order).toEqual(['a', 'b', 'c', 'late']);
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
