import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from './helpers/db.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

describe('test database', () => {
  it('is migrated and has the system accounts', async () => {
    const rows = await t.db('accounts').whereNotNull('code').orderBy('code').pluck('code');
    expect(rows).toEqual(['adjustments', 'expired', 'forfeited', 'promotions', 'refunds', 'sales', 'subscriptions', 'usage']);
  });
});
