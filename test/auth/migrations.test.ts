import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { migrationConfig } from '../../src/db/database.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';

const MINE = ['20261121000400_add_users_last_login.ts', '20261121000410_create_audit_log.ts', '20261121000420_create_login_rate_limits.ts'];

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase(2);
});
afterAll(async () => t.drop());

const tableExists = async (name: string) => (await t.db.raw(`SELECT to_regclass(?) AS r`, [name])).rows[0].r !== null;

describe('account migrations', () => {
  it('go down and up again cleanly, with a user and audit rows in place', async () => {
    await t.db('users').insert({ email: 'keep@example.test', name: 'Keep', password_hash: 'x' });
    await t.db('audit_log').insert({ actor: 'system', action: 'test.event' });
    for (const name of [...MINE].reverse()) await t.db.migrate.down({ ...migrationConfig, name });
    expect(await tableExists('audit_log')).toBe(false);
    expect(await tableExists('login_rate_limits')).toBe(false);
    expect(await t.db.schema.hasColumn('users', 'last_login_at')).toBe(false);

    for (const name of MINE) await t.db.migrate.up({ ...migrationConfig, name });
    expect(await tableExists('audit_log')).toBe(true);
    expect(await tableExists('login_rate_limits')).toBe(true);
    expect(await t.db('users').where({ email: 'keep@example.test' })).toHaveLength(1);
    await expect(t.db('users').insert({ email: 'blank@example.test', name: '', password_hash: 'x' })).rejects.toThrow(/users_name_length/);
    await t.db('audit_log').insert({ actor: 'system', action: 'test.event' });
    await expect(t.db('audit_log').delete()).rejects.toThrow(/append-only/);
  });
});
