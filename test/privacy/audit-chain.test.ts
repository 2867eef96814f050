import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/auth/audit-log.ts';
import { pruneAuditRows, verifyAuditChain } from '../../src/auth/audit-store.ts';
import { createLedger } from '../../src/ledger/ledger-service.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { buildUser, fundAccount } from '../helpers/factories.ts';

const run = promisify(execFile);
let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase(12);
});
afterAll(async () => t.drop());

/** Runs `npm run audit:verify`'s script against the test database; returns exit code and output. */
async function auditVerify(): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/main/audit-verify-cli.ts'], {
      env: { ...process.env, DATABASE_URL: t.url, LOG_LEVEL: 'silent' },
    });
    return { code: 0, out: stdout + stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, out: e.stdout + e.stderr };
  }
}

describe('the audit log hash chain', () => {
  it('refuses UPDATE, DELETE and TRUNCATE, including a sealed row "resealed"', async () => {
    const audit = createAuditLog(t.db);
    const e = await audit.record({ actor: 'system', action: 'test.refusals' });
    await expect(t.db('audit_log').where({ id: e.id }).update({ action: 'test.changed' })).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(t.db('audit_log').where({ id: e.id }).update({ seq: 999_999 })).rejects.toThrow(/append-only: UPDATE refused/);
    await expect(t.db('audit_log').where({ id: e.id }).delete()).rejects.toThrow(/append-only: DELETE refused/);
    await expect(t.db.raw('TRUNCATE audit_log CASCADE')).rejects.toThrow(/append-only: TRUNCATE refused/);
    // the prune switch alone does not open DELETE on entries past the anchor
    await expect(
      t.db.transaction(async (trx) => {
        await trx.raw(`SELECT set_config('tally.audit_prune', 'on', true)`);
        await trx('audit_log').where({ id: e.id }).delete();
      }),
    ).rejects.toThrow(/append-only: DELETE refused/);
  });

  it('when 8 writers append 25 entries each and transfers are written at once, the chain has no fork and verifies', async () => {
    const ledger = createLedger(t.db, { groupCommit: false });
    const user = await buildUser(t.db);
    const before = (await verifyAuditChain(t.db)).headSeq;
    await Promise.all([
      ...Array.from({ length: 8 }, (_, w) =>
        (async () => {
          const audit = createAuditLog(t.db);
          for (let i = 0; i < 25; i++) {
            if (i % 2) await audit.record({ actor: 'system', action: 'test.concurrent', details: { w, i }, ip: `10.0.0.${w}` });
            else await t.db.transaction((trx) => audit.record({ actor: 'system', action: 'test.concurrent', details: { w, i } }, trx));
          }
        })(),
      ),
      ...Array.from({ length: 10 }, () => fundAccount(ledger, user.id, 1000)),
    ]);
    await createAuditLog(t.db).seal();
    const report = await verifyAuditChain(t.db);
    expect(report.firstBreak).toBeNull();
    expect(report.unsealed).toBe(0);
    expect(Number(report.headSeq) - Number(before)).toBe(8 * 25 + 10);
    // every seq from the anchor to the head exactly once, each linked to the one before
    const rows = await t.db('audit_log').select('seq', 'prev_hash', 'hash').orderBy('seq');
    expect(rows.map((r) => Number(r.seq))).toEqual(rows.map((_, i) => i + 1));
    for (let i = 1; i < rows.length; i++) expect(rows[i].prev_hash.equals(rows[i - 1].hash)).toBe(true);
    // the transfers were recorded with their ids
    const transfers = await t.db('audit_log').where({ action: 'ledger.transfer', target_id: user.id });
    expect(transfers).toHaveLength(10);
    expect(transfers[0].details.transferId).toMatch(/^fund:/);
  });

  it('npm run audit:verify exits 0, then 1 naming the first entry changed by hand (trigger disabled as superuser)', async () => {
    const audit = createAuditLog(t.db);
    const victim = await audit.record({ actor: 'system', action: 'test.victim', details: { amount: 5 } });
    await audit.record({ actor: 'system', action: 'test.after' });
    const clean = await auditVerify();
    expect(clean.code).toBe(0);
    expect(clean.out).toMatch(/audit verify: ok \(\d+ entries/);
    const { seq } = await t.db('audit_log').where({ id: victim.id }).first('seq');

    await t.db.transaction(async (trx) => {
      await trx.raw('ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only');
      await trx('audit_log').where({ id: victim.id }).update({ details: JSON.stringify({ amount: 500 }) });
      await trx.raw('ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only');
    });
    const tampered = await auditVerify();
    expect(tampered.code).toBe(1);
    expect(tampered.out).toContain(`broken at entry seq ${seq} (id ${victim.id})`);
    expect(tampered.out).toContain('does not match its hash');

    // put it back, then delete an entry instead: the gap is named
    await t.db.transaction(async (trx) => {
      await trx.raw('ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only');
      await trx('audit_log').where({ id: victim.id }).update({ details: JSON.stringify({ amount: 5 }) });
      await trx('audit_log').where({ id: victim.id }).delete();
      await trx.raw('ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only');
    });
    const deleted = await auditVerify();
    expect(deleted.code).toBe(1);
    expect(deleted.out).toContain(`entry ${seq} of the chain is missing`);
  });
});

describe('pruning the audit log (retention)', () => {
  it('removes only the old prefix, keeps the anchor, audits the pruning, and the rest still verifies', async () => {
    const t2 = await createTestDatabase(3);
    try {
      const audit = createAuditLog(t2.db);
      for (let i = 0; i < 5; i++) await audit.record({ actor: 'system', action: 'test.old', ip: '192.0.2.1' });
      // The database stamps microseconds and a JS Date has milliseconds: an entry written in the
      // same millisecond as `new Date()` is later than it. Wait so that every old entry is before.
      await new Promise((r) => setTimeout(r, 5));
      const cutoff = new Date();
      await new Promise((r) => setTimeout(r, 5));
      for (let i = 0; i < 3; i++) await audit.record({ actor: 'system', action: 'test.new' });
      const oldCount = Number((await t2.db('audit_log').where('created_at', '<', cutoff).count('* as n'))[0]!.n);
      const pruned = await pruneAuditRows(t2.db, cutoff);
      expect(pruned).toBe(oldCount);
      expect(await t2.db('audit_log').where({ action: 'test.old' })).toHaveLength(0);
      expect(await t2.db('audit_log').where({ action: 'test.new' })).toHaveLength(3);
      const [note] = await t2.db('audit_log').where({ action: 'retention.audit_pruned' });
      expect(note.details).toMatchObject({ entries: oldCount });
      await audit.seal();
      const report = await verifyAuditChain(t2.db);
      expect(report.firstBreak).toBeNull();
      expect(Number(report.anchorSeq)).toBe(oldCount);
      // and outside the prune function, deleting is refused again
      await expect(t2.db('audit_log').where({ action: 'test.new' }).delete()).rejects.toThrow(/append-only/);
    } finally {
      await t2.drop();
    }
  });
});
