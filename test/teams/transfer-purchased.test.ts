import crypto from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createLedger, type Ledger } from '../../src/ledger/ledger-service.ts';
import { IdempotencyConflictError, InsufficientCreditsError } from '../../src/ledger/ledger-errors.ts';
import type { GrantKind } from '../../src/ledger/ledger-types.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser } from '../helpers/factories.ts';

let t: TestDatabase;
let ledger: Ledger;
const C = 1000;
const DAY = 86_400_000;

beforeAll(async () => {
  t = await createTestDatabase(10);
  ledger = createLedger(t.db);
});
afterEach(async () => expect(await booksViolations(t.db)).toEqual([]));
afterAll(async () => t.drop());

const give = (userId: string, kind: GrantKind, credits: number, expiresAt: Date | null = null) =>
  ledger.grant({ transferId: `g:${crypto.randomUUID()}`, userId, millicredits: credits * C, kind, actor: 'system', expiresAt });

/** A user holding 3 purchased lots (10 days, never, 3 days) and 20 credits of every other source. */
async function richUser() {
  const user = await buildUser(t.db);
  const in10 = new Date(Date.now() + 10 * DAY);
  const in3 = new Date(Date.now() + 3 * DAY);
  await give(user.id, 'purchase', 4, in10);
  await give(user.id, 'purchase', 5, null);
  await give(user.id, 'purchase', 2, in3);
  for (const kind of ['bonus', 'signup_bonus', 'subscription_grant', 'adjustment'] as const) await give(user.id, kind, 5, new Date(Date.now() + DAY));
  return { user, in10, in3 };
}

const move = (from: string, to: string, credits: number, id = `m:${crypto.randomUUID()}`) =>
  ledger.transferPurchased({ transferId: id, fromOwnerId: from, toOwnerId: to, millicredits: credits * C, kind: 'contribution', actor: `user:${from}`, reason: 'test' });

describe('ledger.transferPurchased (contributions, gifts)', () => {
  it('moves only purchased credits, soonest expiry first, each part keeping its expiry', async () => {
    const { user, in10, in3 } = await richUser();
    const to = await buildUser(t.db);
    const r = await move(user.id, to.id, 7.5);
    expect(r.replayed).toBe(false);
    // 2 (3 days) + 4 (10 days) + 1.5 (never): the purchase lots in spending order; no bonus credits.
    expect(r.transfers.map((x) => x.amount)).toEqual([2 * C, 4 * C, 1.5 * C]);
    expect(r.lots.map((l) => [l.amount, l.expiresAt?.getTime() ?? null, l.source])).toEqual([
      [2 * C, in3.getTime(), 'contribution'],
      [4 * C, in10.getTime(), 'contribution'],
      [1.5 * C, null, 'contribution'],
    ]);
    const left = await t.db('lots as l').join('accounts as a', 'a.id', 'l.account_id').where('a.user_id', user.id).select('l.source', 'l.remaining');
    expect(left.filter((l) => l.source === 'purchase').reduce((s, l) => s + Number(l.remaining), 0)).toBe(3.5 * C);
    expect(left.filter((l) => l.source !== 'purchase').every((l) => Number(l.remaining) === 5 * C)).toBe(true);
    expect(await ledger.getAvailable(to.id)).toBe(7.5 * C);
    expect(await ledger.getAvailable(user.id)).toBe(23.5 * C);
  });

  it('refuses more than the purchased credits with 402 (available = what could move), even with a larger balance; held purchased credits stay', async () => {
    const { user } = await richUser();
    const to = await buildUser(t.db);
    await ledger.reserve({ holdId: `h:${user.id}`, userId: user.id, millicredits: 22 * C, timeoutMs: 60_000, actor: 'system' });
    // 31 credits, 22 held: the hold took the soonest-expiring lots (all 20 non-purchased expire tomorrow, then 2 purchased).
    const err = await move(user.id, to.id, 10).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(InsufficientCreditsError);
    expect((err as InsufficientCreditsError).availableMillicredits).toBe(9 * C);
    expect(await ledger.getBalance(to.id)).toMatchObject({ available: 0 });
    await move(user.id, to.id, 9);
    expect(await ledger.getAvailable(user.id)).toBe(0);
  });

  it('is idempotent by id (a replay changes nothing; other parameters are a conflict)', async () => {
    const { user } = await richUser();
    const to = await buildUser(t.db);
    const id = `m:${crypto.randomUUID()}`;
    const first = await move(user.id, to.id, 6, id);
    const again = await move(user.id, to.id, 6, id);
    expect(again.replayed).toBe(true);
    expect(again.transfers.map((x) => x.id)).toEqual(first.transfers.map((x) => x.id));
    expect(again.lots.map((x) => x.id)).toEqual(first.lots.map((x) => x.id));
    expect(await ledger.getAvailable(to.id)).toBe(6 * C);
    await expect(move(user.id, to.id, 5, id)).rejects.toBeInstanceOf(IdempotencyConflictError);
    const other = await buildUser(t.db);
    await expect(move(user.id, other.id, 6, id)).rejects.toBeInstanceOf(IdempotencyConflictError);
  });

  it('under concurrency never moves more than the purchased credits, and opposite transfers do not deadlock', async () => {
    const a = await buildUser(t.db);
    const b = await buildUser(t.db);
    await give(a.id, 'purchase', 10);
    await give(b.id, 'purchase', 10);
    await give(a.id, 'bonus', 50);
    const results = await Promise.allSettled([
      ...Array.from({ length: 8 }, () => move(a.id, b.id, 2)),
      ...Array.from({ length: 8 }, () => move(b.id, a.id, 2)),
    ]);
    const ok = results.filter((r) => r.status === 'fulfilled').length;
    for (const r of results) if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(InsufficientCreditsError);
    // Each side can send its 10 purchased credits at most (received contributions are not purchased).
    expect(ok).toBe(10);
    const purchasedLeft = async (userId: string) =>
      Number((await t.db('lots as l').join('accounts as x', 'x.id', 'l.account_id').where({ 'x.user_id': userId, 'l.source': 'purchase' }).sum({ s: 'l.remaining' }).first())!.s);
    expect(await purchasedLeft(a.id)).toBe(0);
    expect(await purchasedLeft(b.id)).toBe(0);
    expect((await ledger.getAvailable(a.id)) + (await ledger.getAvailable(b.id))).toBe(70 * C);
  });
});
