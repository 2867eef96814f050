import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DomainError } from '../../src/domain-error.ts';
import { createLedger } from '../../src/ledger/ledger-service.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser, type TestUser } from '../helpers/factories.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

const C = 1000;
type Op =
  | { op: 'grant'; user: number; amount: number; ttl: number | null }
  | { op: 'reserve'; user: number; amount: number }
  | { op: 'post'; hold: number; fraction: number }
  | { op: 'void'; hold: number }
  | { op: 'debit'; user: number; amount: number }
  | { op: 'clawback'; lot: number; fraction: number }
  | { op: 'tick'; ms: number }
  | { op: 'expire' };

const amount = fc.integer({ min: 1, max: 20 * C });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({ op: fc.constant('grant' as const), user: fc.nat(2), amount, ttl: fc.option(fc.integer({ min: 1000, max: 60_000 }), { nil: null }) }),
  fc.record({ op: fc.constant('reserve' as const), user: fc.nat(2), amount }),
  fc.record({ op: fc.constant('post' as const), hold: fc.nat(20), fraction: fc.double({ min: 0, max: 1, noNaN: true }) }),
  fc.record({ op: fc.constant('void' as const), hold: fc.nat(20) }),
  fc.record({ op: fc.constant('debit' as const), user: fc.nat(2), amount }),
  fc.record({ op: fc.constant('clawback' as const), lot: fc.nat(20), fraction: fc.double({ min: 0.01, max: 1, noNaN: true }) }),
  fc.record({ op: fc.constant('tick' as const), ms: fc.integer({ min: 500, max: 40_000 }) }),
  fc.constant({ op: 'expire' as const }),
);

describe('ledger under random operation sequences', () => {
  it('keeps every invariant after each step of grant/reserve/post/void/debit/clawback/expire', async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 25 }), async (ops) => {
        run++;
        const clock = { now: Date.now() };
        const ledger = createLedger(t.db, { clock: () => new Date(clock.now) });
        const users: TestUser[] = [await buildUser(t.db), await buildUser(t.db), await buildUser(t.db)];
        const holds: Array<{ id: string; amount: number }> = [];
        const lots: Array<{ id: string; amount: number }> = [];
        for (const [i, o] of ops.entries()) {
          const id = `p${run}-${i}`;
          try {
            switch (o.op) {
              case 'grant': {
                const expiresAt = o.ttl === null ? null : new Date(clock.now + o.ttl);
                const g = await ledger.grant({ transferId: id, userId: users[o.user]!.id, millicredits: o.amount, kind: 'purchase', actor: 'test', expiresAt });
                lots.push({ id: g.lot.id, amount: o.amount });
                break;
              }
              case 'reserve': {
                const h = await ledger.reserve({ holdId: id, userId: users[o.user]!.id, millicredits: o.amount, timeoutMs: 30_000, actor: 'test' });
                holds.push({ id: h.id, amount: h.amount });
                break;
              }
              case 'post': {
                const h = holds[o.hold % Math.max(holds.length, 1)];
                if (h) await ledger.post({ holdId: h.id, millicredits: Math.floor(h.amount * o.fraction), actor: 'test' });
                break;
              }
              case 'void': {
                const h = holds[o.hold % Math.max(holds.length, 1)];
                if (h) await ledger.void({ holdId: h.id, actor: 'test' });
                break;
              }
              case 'debit':
                await ledger.debit({ transferId: id, userId: users[o.user]!.id, millicredits: o.amount, kind: 'usage', actor: 'test' });
                break;
              case 'clawback': {
                const l = lots[o.lot % Math.max(lots.length, 1)];
                if (l) await ledger.clawback({ transferId: id, lotId: l.id, millicredits: Math.max(1, Math.floor(l.amount * o.fraction)), actor: 'test' });
                break;
              }
              case 'tick':
                clock.now += o.ms;
                break;
              case 'expire':
                await ledger.expireHolds(new Date(clock.now));
                await ledger.expireLots(new Date(clock.now));
                break;
            }
          } catch (err) {
            // Refusals are part of the contract (402 short, 409 hold already resolved); anything else is a bug.
            if (!(err instanceof DomainError) || !['insufficient_credits', 'hold_not_active', 'idempotency_conflict'].includes(err.code)) throw err;
          }
          const violations = await booksViolations(t.db);
          if (violations.length > 0) throw new Error(`after step ${i} (${JSON.stringify(o)}): ${JSON.stringify(violations)}`);
          for (const u of users) {
            const b = await ledger.getBalance(u.id);
            expect(b.held).toBeGreaterThanOrEqual(0);
            expect(b.available + b.debt).toBeGreaterThanOrEqual(0); // never overspent through reserve/debit
          }
        }
      }),
      { numRuns: 30 },
    );
  });
});
