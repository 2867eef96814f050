import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditLog } from '../../src/auth/audit-log.ts';
import { verifyAuditChain } from '../../src/auth/audit-store.ts';
import { migrationConfig } from '../../src/db/database.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { buildUser } from '../helpers/factories.ts';

const MINE = ['20261130220000_chain_audit_log.ts', '20261130220100_create_account_privacy.ts'];

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase(3);
});
afterAll(async () => t.drop());

describe('privacy migrations', () => {
  it('go down with audit rows in place (personal data back in its columns), and up again sealing them into a chain that verifies', async () => {
    const user = await buildUser(t.db);
    await createAuditLog(t.db).record({ actor: `user:${user.id}`, actorUserId: user.id, action: 'auth.signup', ip: '203.0.113.9', details: { email: user.email } });
    for (const name of [...MINE].reverse()) await t.db.migrate.down({ ...migrationConfig, name });
    const [row] = await t.db('audit_log').where({ action: 'auth.signup' });
    expect(row).toMatchObject({ ip: '203.0.113.9', details: { email: user.email } });
    expect(await t.db.schema.hasTable('account_exports')).toBe(false);
    expect(await t.db.schema.hasColumn('audit_log', 'hash')).toBe(false);

    for (const name of MINE) await t.db.migrate.up({ ...migrationConfig, name });
    const [again] = await t.db('audit_log').where({ action: 'auth.signup' });
    expect(again).toMatchObject({ ip: null, details: {} });
    expect(again.seq).not.toBeNull();
    const report = await verifyAuditChain(t.db);
    expect(report.firstBreak).toBeNull();
    expect(report.checked).toBeGreaterThan(0);
    await expect(t.db('audit_log').delete()).rejects.toThrow(/append-only/);
  });
});
