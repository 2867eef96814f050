import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/auth/audit-log.ts';
import { createLedger, type Ledger } from '../../src/ledger/ledger-service.ts';
import { createTeams } from '../../src/teams/teams-service.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser, fundAccount } from '../helpers/factories.ts';

let t: TestDatabase;
let ledger: Ledger;
const C = 1000;
const noMail = { async sendInvitation() {} };

beforeAll(async () => {
  t = await createTestDatabase(10);
  ledger = createLedger(t.db);
});
afterEach(async () => expect(await booksViolations(t.db)).toEqual([]));
afterAll(async () => t.drop());

async function newTeam() {
  const owner = await buildUser(t.db);
  const teams = createTeams({ db: t.db, ledger, audit: createAuditLog(t.db), mailer: noMail, appUrl: 'http://localhost:3000' });
  const team = await teams.create(owner.id, 'Acme');
  return { owner, team, teams };
}

describe('accounts owned by a team', () => {
  it('a team has its own account: grants, holds, posts, voids, debits and statements work as for a user', async () => {
    const { owner, team } = await newTeam();
    const account = await t.db('accounts').where({ team_id: team.id }).first();
    expect(account).toMatchObject({ user_id: null, code: null });

    await fundAccount(ledger, team.id, 10 * C);
    const h1 = await ledger.reserve({ holdId: `h1:${team.id}`, userId: team.id, millicredits: 3 * C, timeoutMs: 60_000, actor: `user:${owner.id}` });
    expect(h1.accountId).toBe(account.id);
    await ledger.post({ holdId: h1.id, millicredits: 2 * C, actor: 'system' });
    const h2 = await ledger.reserve({ holdId: `h2:${team.id}`, userId: team.id, millicredits: 4 * C, timeoutMs: 60_000, actor: `user:${owner.id}` });
    await ledger.void({ holdId: h2.id, actor: 'system' });
    await ledger.debit({ transferId: `d:${team.id}`, userId: team.id, millicredits: 1 * C, kind: 'usage', actor: 'system' });

    expect(await ledger.getBalance(team.id)).toMatchObject({ available: 7 * C, held: 0, debt: 0 });
    expect(await ledger.getAvailable(team.id)).toBe(7 * C);
    const statement = await ledger.listTransfers(team.id);
    expect(statement.items.map((e) => e.amount)).toEqual([-1 * C, -2 * C, 10 * C]);
    // The owner's own wallet is a different account, untouched.
    expect(await ledger.getBalance(owner.id)).toMatchObject({ available: 0, held: 0 });
    await expect(ledger.reserve({ holdId: `h3:${team.id}`, userId: team.id, millicredits: 8 * C, timeoutMs: 60_000, actor: 'x' })).rejects.toMatchObject({
      code: 'insufficient_credits',
    });
  });

  it('expiry sweeps a team lot and an overdue hold like a user one', async () => {
    const { team } = await newTeam();
    await fundAccount(ledger, team.id, 5 * C, new Date(Date.now() + 60_000));
    await ledger.reserve({ holdId: `hx:${team.id}`, userId: team.id, millicredits: 2 * C, timeoutMs: 1, actor: 'x' });
    expect(await ledger.expireHolds(new Date(Date.now() + 10))).toBeGreaterThanOrEqual(1);
    expect(await ledger.expireLots(new Date(Date.now() + 120_000))).toBeGreaterThanOrEqual(1);
    expect(await ledger.getBalance(team.id)).toMatchObject({ available: 0, held: 0 });
  });

  it('concurrent spends on one pool never overdraw it (group commit on the team account)', async () => {
    const { team } = await newTeam();
    await fundAccount(ledger, team.id, 10 * C);
    const results = await Promise.allSettled(
      Array.from({ length: 25 }, (_, i) => ledger.reserve({ holdId: `c${i}:${team.id}`, userId: team.id, millicredits: 1 * C, timeoutMs: 60_000, actor: 'x' })),
    );
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(10);
    expect(await ledger.getBalance(team.id)).toMatchObject({ available: 0, held: 10 * C });
  });

  it('a member contribution moves purchased credits from their wallet to the pool in one transaction (402 when short)', async () => {
    const { owner, team, teams } = await newTeam();
    await ledger.grant({ transferId: `buy:${owner.id}`, userId: owner.id, millicredits: 5 * C, kind: 'purchase', actor: 'stripe' });
    await fundAccount(ledger, owner.id, 50 * C); // bonus credits: they never move
    await teams.contribute(team.id, owner.id, 3 * C, 'k1');
    await teams.contribute(team.id, owner.id, 3 * C, 'k1'); // replay: nothing more
    expect(await ledger.getAvailable(owner.id)).toBe(52 * C);
    expect(await ledger.getAvailable(team.id)).toBe(3 * C);
    await expect(teams.contribute(team.id, owner.id, 3 * C, 'k2')).rejects.toMatchObject({ code: 'insufficient_credits' });
    expect(await ledger.getAvailable(team.id)).toBe(3 * C);
  });
});
