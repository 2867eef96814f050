import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as migration from '../../migrations/20261121000700_create_tasks.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { buildUser } from '../helpers/factories.ts';

let t: TestDatabase;
beforeAll(async () => {
  t = await createTestDatabase();
});
afterAll(async () => t.drop());

function taskRow(userId: string, overrides: Record<string, unknown> = {}) {
  const id = crypto.randomUUID();
  return {
    id,
    user_id: userId,
    file_name: 'a.pdf',
    kind: 'pdf',
    mime_type: 'application/pdf',
    size_bytes: 10,
    sha256: 'x',
    storage_key: `ab/${id}`,
    pages: 2,
    estimated_millicredits: 2000,
    hold_id: `task:${id}`,
    job_id: crypto.randomUUID(),
    ...overrides,
  };
}

const violation = async (p: Promise<unknown>) => ((await p.then(() => undefined, (e: { code?: string; constraint?: string }) => e)) ?? {}) as { code?: string; constraint?: string };

describe('the tasks migration', () => {
  it('refuses what the code must never write', async () => {
    const user = await buildUser(t.db);
    await t.db('tasks').insert(taskRow(user.id));
    expect(await violation(t.db('tasks').insert(taskRow(user.id, { status: 'done' })))).toMatchObject({ constraint: 'tasks_status_check' });
    expect(await violation(t.db('tasks').insert(taskRow(user.id, { status: 'completed' })))).toMatchObject({ constraint: 'tasks_completed_settled' });
    expect(await violation(t.db('tasks').insert(taskRow(user.id, { status: 'failed', completed_at: new Date() })))).toMatchObject({ constraint: 'tasks_failed_explained' });
    expect(await violation(t.db('tasks').insert(taskRow(user.id, { pages_done: 3 })))).toMatchObject({ constraint: 'tasks_pages_range' });
    expect(await violation(t.db('tasks').insert(taskRow(user.id, { charged_millicredits: -1 })))).toMatchObject({ constraint: 'tasks_charged_nonnegative' });
    expect(await violation(t.db('tasks').insert(taskRow(user.id, { estimated_millicredits: 0 })))).toMatchObject({ constraint: 'tasks_estimate_positive' });
  });

  it('keeps an Idempotency-Key unique per user, not across users', async () => {
    const [a, b] = [await buildUser(t.db), await buildUser(t.db)];
    await t.db('tasks').insert(taskRow(a.id, { idempotency_key: 'k' }));
    await t.db('tasks').insert(taskRow(b.id, { idempotency_key: 'k' }));
    await t.db('tasks').insert(taskRow(a.id));
    await t.db('tasks').insert(taskRow(a.id));
    expect(await violation(t.db('tasks').insert(taskRow(a.id, { idempotency_key: 'k' })))).toMatchObject({ code: '23505', constraint: 'tasks_user_idempotency_key' });
  });

  it('goes down and up again', async () => {
    await migration.down(t.db);
    expect(await t.db.schema.hasTable('tasks')).toBe(false);
    expect(await t.db.schema.hasTable('task_pages')).toBe(false);
    await migration.up(t.db);
    expect(await t.db.schema.hasTable('tasks')).toBe(true);
    expect(await t.db('tasks').count({ n: '*' })).toEqual([{ n: 0 }]);
  });
});
