import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrateLatest, migrateRollback, migrationConfig, runSeeds } from '../../src/db/database.ts';
import { createLedger } from '../../src/ledger/ledger-service.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser, fundAccount } from '../helpers/factories.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase(5);
});
afterAll(async () => t.drop());

async function tables(): Promise<string[]> {
  const r = await t.db.raw(`SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'knex_%' ORDER BY 1`);
  return r.rows.map((x: { tablename: string }) => x.tablename);
}

describe('migrations', () => {
  it('go down cleanly on a database holding rows, and up again', async () => {
    const ledger = createLedger(t.db);
    const user = await buildUser(t.db);
    await fundAccount(ledger, user.id, 5000);
    await ledger.reserve({ holdId: `m-${user.id}`, userId: user.id, millicredits: 1000, timeoutMs: 60_000, actor: 'test' });
    const before = await tables();
    expect(before).toEqual(expect.arrayContaining(['users', 'accounts', 'transfers', 'lots', 'holds', 'payments', 'credit_packages']));

    const rolledBack = await migrateRollback(t.db, true);
    expect(rolledBack.length).toBeGreaterThanOrEqual(5);
    expect(await tables()).toEqual([]);

    await migrateLatest(t.db);
    await runSeeds(t.db);
    expect(await tables()).toEqual(before);
    const [, pending] = (await t.db.migrate.list(migrationConfig)) as [unknown[], unknown[]];
    expect(pending).toEqual([]);
    expect(await t.db('credit_packages').count({ n: '*' })).toEqual([{ n: 3 }]);

    // The schema works again, constraints included.
    const again = await buildUser(t.db);
    await fundAccount(createLedger(t.db), again.id, 2000);
    await expect(t.db('lots').update({ remaining: -1 })).rejects.toMatchObject({ constraint: expect.stringMatching(/^lots_/) });
    expect(await booksViolations(t.db)).toEqual([]);
  });

  it('running the seeds twice changes nothing', async () => {
    await runSeeds(t.db);
    const first = await t.db('credit_packages').orderBy('id');
    await runSeeds(t.db);
    expect(await t.db('credit_packages').orderBy('id')).toEqual(first);
  });
});
