import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLedger } from '../../src/ledger/ledger-service.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { buildUser, fundAccount } from '../helpers/factories.ts';

const run = promisify(execFile);
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase(3);
});
afterAll(async () => t.drop());

/** Runs `npm run ledger:check`'s script against the test database; returns exit code and output. */
async function ledgerCheck(): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/main/ledger-check-cli.ts'], {
      env: { ...process.env, DATABASE_URL: t.url, LOG_LEVEL: 'silent' },
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('npm run ledger:check', () => {
  it('exits 0 on clean books and 1, naming the violation, after a transfer row is changed by hand', async () => {
    const user = await buildUser(t.db);
    const g = await fundAccount(createLedger(t.db), user.id, 7000);
    const clean = await ledgerCheck();
    expect(clean).toMatchObject({ code: 0 });
    expect(clean.out).toMatch(/ledger check: ok \(1 transfers, 1 lots, 0 holds/);

    await t.db.transaction(async (trx) => {
      await trx.raw('SET LOCAL session_replication_role = replica'); // what a hand edit must do past the trigger
      await trx('transfers').where({ id: g.transfer.id }).update({ amount: 9000 });
    });
    const tampered = await ledgerCheck();
    expect(tampered.code).toBe(1);
    expect(tampered.out).toContain('[account_totals_match_transfers]');
    expect(tampered.out).toContain(`transfer ${g.transfer.id} of 9000`);
  });
});
