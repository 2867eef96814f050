import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLedger, type Ledger } from '../../src/ledger/ledger-service.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser, fundAccount } from '../helpers/factories.ts';

let t: TestDatabase;
let ledger: Ledger;
const C = 1000; // millicredits per credit
const HOUR = 3_600_000;

beforeAll(async () => {
  t = await createTestDatabase(30);
  ledger = createLedger(t.db);
});
afterEach(async () => {
  expect(await booksViolations(t.db)).toEqual([]);
});
afterAll(async () => t.drop());

describe('grant', () => {
  it('creates a lot and a transfer, and a replay with the same id changes nothing', async () => {
    const user = await buildUser(t.db);
    const input = { transferId: `g-${user.id}`, userId: user.id, millicredits: 10 * C, kind: 'signup_bonus' as const, actor: 'system' };
    const first = await ledger.grant(input);
    const again = await ledger.grant(input);
    expect(first.replayed).toBe(false);
    expect(again.replayed).toBe(true);
    expect(again.lot.id).toBe(first.lot.id);
    const balance = await ledger.getBalance(user.id);
    expect(balance).toMatchObject({ available: 10 * C, held: 0, debt: 0 });
    expect(balance.lots).toHaveLength(1);
    expect(await t.db('transfers').where({ id: input.transferId }).count({ n: '*' })).toEqual([{ n: 1 }]);
  });

  it('rejects the same id with different parameters as a conflict', async () => {
    const user = await buildUser(t.db);
    await ledger.grant({ transferId: `c-${user.id}`, userId: user.id, millicredits: C, kind: 'bonus', actor: 'system' });
    await expect(
      ledger.grant({ transferId: `c-${user.id}`, userId: user.id, millicredits: 2 * C, kind: 'bonus', actor: 'system' }),
    ).rejects.toMatchObject({ code: 'idempotency_conflict' });
    expect((await ledger.getBalance(user.id)).available).toBe(C);
  });
});

describe('holds', () => {
  it('reserve → post spends the actual cost and releases the rest', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const hold = await ledger.reserve({ holdId: `h-${user.id}`, userId: user.id, millicredits: 4 * C, timeoutMs: HOUR, actor: 'system' });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 6 * C, held: 4 * C });
    const { transfer } = await ledger.post({ holdId: hold.id, millicredits: 1500, actor: 'system' });
    expect(transfer?.amount).toBe(1500);
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 8500, held: 0 });
  });

  it('void releases everything; a posted hold cannot be voided and a voided one cannot be posted', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 5 * C);
    const a = await ledger.reserve({ holdId: `va-${user.id}`, userId: user.id, millicredits: 2 * C, timeoutMs: HOUR, actor: 'system' });
    const b = await ledger.reserve({ holdId: `vb-${user.id}`, userId: user.id, millicredits: 2 * C, timeoutMs: HOUR, actor: 'system' });
    await ledger.void({ holdId: a.id, actor: 'system' });
    await ledger.post({ holdId: b.id, millicredits: 2 * C, actor: 'system' });
    await expect(ledger.post({ holdId: a.id, millicredits: C, actor: 'system' })).rejects.toMatchObject({ code: 'hold_not_active' });
    await expect(ledger.void({ holdId: b.id, actor: 'system' })).rejects.toMatchObject({ code: 'hold_not_active' });
    await expect(ledger.post({ holdId: b.id, millicredits: C, actor: 'system' })).rejects.toMatchObject({ code: 'hold_not_active' });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 3 * C, held: 0 });
  });

  it('refuses to post more than was held', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 5 * C);
    const h = await ledger.reserve({ holdId: `o-${user.id}`, userId: user.id, millicredits: C, timeoutMs: HOUR, actor: 'system' });
    await expect(ledger.post({ holdId: h.id, millicredits: C + 1, actor: 'system' })).rejects.toMatchObject({ code: 'hold_not_active' });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 4 * C, held: C });
  });

  it('a reserve above available is refused with 402 and holds nothing', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 2 * C);
    await expect(
      ledger.reserve({ holdId: `x-${user.id}`, userId: user.id, millicredits: 3 * C, timeoutMs: HOUR, actor: 'system' }),
    ).rejects.toMatchObject({ code: 'insufficient_credits', data: { required: 3, available: 2 } });
    expect(await t.db('holds').where({ id: `x-${user.id}` }).first()).toBeUndefined();
  });

  it('the sweeper voids holds past their timeout', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 5 * C);
    const h = await ledger.reserve({ holdId: `s-${user.id}`, userId: user.id, millicredits: 3 * C, timeoutMs: 1000, actor: 'system' });
    expect(await ledger.expireHolds(new Date(Date.now() - 60_000))).toBe(0);
    expect(await ledger.expireHolds(new Date(Date.now() + 5000))).toBeGreaterThanOrEqual(1);
    expect((await ledger.findHold(h.id))?.status).toBe('expired');
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 5 * C, held: 0 });
  });
});

describe('lots', () => {
  it('spending draws soonest-expiring lots first, then the oldest, and records which lot paid', async () => {
    const user = await buildUser(t.db);
    const never = await fundAccount(ledger, user.id, 5 * C);
    const late = await fundAccount(ledger, user.id, 2 * C, new Date(Date.now() + 10 * 86_400_000));
    const soon = await fundAccount(ledger, user.id, 2 * C, new Date(Date.now() + 86_400_000));
    const { transfer } = await ledger.debit({ transferId: `d-${user.id}`, userId: user.id, millicredits: 3 * C, kind: 'usage', actor: 'system' });
    const allocations = await t.db('transfer_allocations').where({ transfer_id: transfer.id }).orderBy('id');
    expect(allocations.map((a) => [a.lot_id, a.amount])).toEqual([
      [soon.lot.id, 2 * C],
      [late.lot.id, C],
    ]);
    const lots = (await ledger.getBalance(user.id)).lots;
    expect(lots.map((l) => [l.id, l.remaining])).toEqual([
      [late.lot.id, C],
      [never.lot.id, 5 * C],
    ]);
  });

  it('expired lots stop counting at once and the sweeper moves their remainder to `expired`', async () => {
    const user = await buildUser(t.db);
    const clock = { now: new Date() };
    const timed = createLedger(t.db, { clock: () => clock.now });
    await fundAccount(timed, user.id, 4 * C, new Date(clock.now.getTime() + 1000));
    await fundAccount(timed, user.id, C);
    clock.now = new Date(clock.now.getTime() + 2000);
    expect((await timed.getBalance(user.id)).available).toBe(C);
    expect(await timed.expireLots(clock.now)).toBe(1);
    const rows = await t.db('transfers').where({ kind: 'expiry' }).whereIn('debit_account_id', t.db('accounts').select('id').where({ user_id: user.id }));
    expect(rows.map((r) => r.amount)).toEqual([4 * C]);
    expect(await timed.expireLots(clock.now)).toBe(0);
  });

  it('credits held before their lot expires stay reserved and can be posted; what is released expires at the next sweep', async () => {
    const user = await buildUser(t.db);
    const clock = { now: new Date() };
    const timed = createLedger(t.db, { clock: () => clock.now });
    await fundAccount(timed, user.id, 4 * C, new Date(clock.now.getTime() + 1000));
    const h = await timed.reserve({ holdId: `e-${user.id}`, userId: user.id, millicredits: 3 * C, timeoutMs: HOUR, actor: 'system' });
    clock.now = new Date(clock.now.getTime() + 2000);
    expect(await timed.expireLots(clock.now)).toBe(1); // the unheld 1 credit
    expect(await timed.getBalance(user.id)).toMatchObject({ available: 0, held: 3 * C });
    await timed.post({ holdId: h.id, millicredits: 2 * C, actor: 'system' });
    expect(await timed.expireLots(clock.now)).toBe(1); // the released 1 credit
    const balance = await timed.getBalance(user.id);
    expect(balance).toMatchObject({ available: 0, held: 0 });
    expect(balance.lots).toEqual([]);
  });
});

describe('clawback', () => {
  it('takes back the unspent part of a lot and records the spent part as debt, repaid by the next grant', async () => {
    const user = await buildUser(t.db);
    const bought = await ledger.grant({ transferId: `p-${user.id}`, userId: user.id, millicredits: 100 * C, kind: 'purchase', actor: 'stripe' });
    await ledger.debit({ transferId: `u-${user.id}`, userId: user.id, millicredits: 70 * C, kind: 'usage', actor: 'system' });
    const r = await ledger.clawback({ transferId: `r-${user.id}`, lotId: bought.lot.id, millicredits: 50 * C, actor: 'stripe' });
    expect(r).toMatchObject({ recovered: 30 * C, debt: 20 * C });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: -20 * C, debt: 20 * C });
    await expect(
      ledger.reserve({ holdId: `b-${user.id}`, userId: user.id, millicredits: 1, timeoutMs: HOUR, actor: 'system' }),
    ).rejects.toMatchObject({ code: 'insufficient_credits' });
    await ledger.grant({ transferId: `p2-${user.id}`, userId: user.id, millicredits: 100 * C, kind: 'purchase', actor: 'stripe' });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 80 * C, debt: 0 });
    const again = await ledger.clawback({ transferId: `r-${user.id}`, lotId: bought.lot.id, millicredits: 50 * C, actor: 'stripe' });
    expect(again.replayed).toBe(true);
  });
});

describe('statement', () => {
  it('lists transfers newest first with the balance after each, filtered and paginated', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    for (let i = 0; i < 5; i++) {
      await ledger.debit({ transferId: `st-${user.id}-${i}`, userId: user.id, millicredits: C, kind: 'usage', actor: 'system' });
    }
    const first = await ledger.listTransfers(user.id, {}, { limit: 4 });
    expect(first.items.map((e) => [e.kind, e.amount, e.balanceAfter])).toEqual([
      ['usage', -C, 5 * C],
      ['usage', -C, 6 * C],
      ['usage', -C, 7 * C],
      ['usage', -C, 8 * C],
    ]);
    const second = await ledger.listTransfers(user.id, {}, { limit: 4, cursor: first.nextCursor });
    expect(second.items.map((e) => [e.kind, e.balanceAfter])).toEqual([
      ['usage', 9 * C],
      ['bonus', 10 * C],
    ]);
    expect(second.nextCursor).toBeNull();
    expect((await ledger.listTransfers(user.id, { kind: 'bonus' })).items).toHaveLength(1);
  });
});

describe('concurrency', () => {
  it('when 200 reserves of 1 credit race for 50 available, exactly 50 win', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 50 * C);
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) =>
        ledger.reserve({ holdId: `race-${user.id}-${i}`, userId: user.id, millicredits: C, timeoutMs: HOUR, actor: 'system' }),
      ),
    );
    const won = results.filter((r) => r.status === 'fulfilled');
    const lost = results.filter((r) => r.status === 'rejected');
    expect(won).toHaveLength(50);
    expect(lost).toHaveLength(150);
    for (const r of lost) expect((r as PromiseRejectedResult).reason).toMatchObject({ code: 'insufficient_credits' });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 0, held: 50 * C });
    expect(await t.db('holds').join('accounts', 'accounts.id', 'holds.account_id').where({ user_id: user.id }).count({ n: '*' })).toEqual([{ n: 50 }]);
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
    const spent = 10 * C - (await ledger.getBalance(user.id)).available;
    expect([4 * C, 5 * C]).toContain(spent);
    expect(await t.db('transfers').where({ hold_id: h.id }).count({ n: '*' })).toEqual([{ n: 1 }]);
  });

  it('a post racing a void: exactly one of them takes effect', async () => {
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 10 * C);
    const h = await ledger.reserve({ holdId: `pv-${user.id}`, userId: user.id, millicredits: 5 * C, timeoutMs: HOUR, actor: 'system' });
    const [p, v] = await Promise.allSettled([
      ledger.post({ holdId: h.id, millicredits: 5 * C, actor: 'a' }),
      ledger.void({ holdId: h.id, actor: 'b' }),
    ]);
    expect([p.status, v.status].sort()).toEqual(['fulfilled', 'rejected']);
    const status = (await ledger.findHold(h.id))?.status;
    expect((await ledger.getBalance(user.id)).available).toBe(status === 'posted' ? 5 * C : 10 * C);
  });

  it('the same grant id sent 20 times at once grants once', async () => {
    const user = await buildUser(t.db);
    const results = await Promise.all(
      Array.from({ length: 20 }, () => ledger.grant({ transferId: `once-${user.id}`, userId: user.id, millicredits: 10 * C, kind: 'signup_bonus', actor: 'system' })),
    );
    expect(results.filter((r) => !r.replayed)).toHaveLength(1);
    expect((await ledger.getBalance(user.id)).available).toBe(10 * C);
  });
});

describe('ledger check', () => {
  it('finds a transfer row tampered with by hand', async () => {
    const user = await buildUser(t.db);
    const g = await fundAccount(ledger, user.id, 3 * C);
    expect(await booksViolations(t.db)).toEqual([]);
    await expect(t.db('transfers').where({ id: g.transfer.id }).update({ amount: 4 * C })).rejects.toThrow(/append-only/);
    await t.db.transaction(async (trx) => {
      await trx.raw(`SET LOCAL session_replication_role = replica`);
      await trx('transfers').where({ id: g.transfer.id }).update({ amount: 4 * C });
    });
    const violations = await booksViolations(t.db);
    expect(violations.map((v) => v.invariant)).toEqual(expect.arrayContaining(['account_totals_match_transfers', 'grant_has_matching_lot']));
    await t.db.transaction(async (trx) => {
      await trx.raw(`SET LOCAL session_replication_role = replica`);
      await trx('transfers').where({ id: g.transfer.id }).update({ amount: 3 * C });
    });
  });
});
