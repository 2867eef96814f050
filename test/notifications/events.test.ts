import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedInUser } from '../auth/auth-helpers.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

let ta: TestApp;

beforeAll(async () => {
  ta = await buildTestApp();
});
afterAll(async () => {
  await ta.close();
});

const deliveries = (endpointId: string) => ta.t.db('webhook_deliveries').where({ endpoint_id: endpointId }).orderBy('created_at');

/** A finished task row as the worker leaves it (tasks table of issue 5). */
async function finishedTask(userId: string, status: 'completed' | 'failed') {
  const id = crypto.randomUUID();
  await ta.t.db('tasks').insert({
    id,
    user_id: userId,
    status,
    file_name: `scan-${status}.pdf`,
    kind: 'pdf',
    mime_type: 'application/pdf',
    size_bytes: 1000,
    sha256: 'x'.repeat(64),
    storage_key: `k-${id}`,
    pages: 2,
    estimated_millicredits: 2_000,
    charged_millicredits: status === 'completed' ? 2_000 : null,
    hold_id: `task:${id}`,
    job_id: crypto.randomUUID(),
    error_code: status === 'failed' ? 'ocr_failed' : null,
    error_detail: status === 'failed' ? 'The page could not be read.' : null,
    completed_at: new Date(),
  });
  return id;
}

describe('events the sweep announces', () => {
  it('task.completed and task.failed once each; the job email only for users who opted in', async () => {
    const { agent, user } = await signedInUser(ta.app);
    const ep = (await agent.post('/api/webhook-endpoints').send({ url: 'http://127.0.0.1:9/x', events: ['task.completed', 'task.failed'] }).expect(201)).body.endpoint;
    const done = await finishedTask(user.id, 'completed');
    await Promise.all([ta.deps.notifications.scanner.runOnce(), ta.deps.notifications.scanner.runOnce()]);
    expect((await deliveries(ep.id)).map((d) => [d.type, d.payload.data.taskId])).toEqual([['task.completed', done]]);
    expect(await ta.t.db('email_outbox').where({ user_id: user.id }).whereIn('type', ['job_finished', 'job_failed'])).toHaveLength(0);

    await agent.put('/api/account/notification-settings').send({ jobs: true }).expect(200);
    const failed = await finishedTask(user.id, 'failed');
    await ta.deps.notifications.scanner.runOnce();
    await ta.deps.notifications.scanner.runOnce();
    expect((await deliveries(ep.id)).map((d) => d.type)).toEqual(['task.completed', 'task.failed']);
    const mails = await ta.t.db('email_outbox').where({ user_id: user.id, type: 'job_failed' });
    expect(mails).toHaveLength(1);
    expect(mails[0].text_body).toContain('The page could not be read.');
    expect(mails[0].text_body).toContain(`/tasks/${failed}`);
    expect((await agent.get('/api/notifications').expect(200)).body.notifications.map((n: { title: string }) => n.title)).toEqual(['Job failed', 'Job finished']);
  });

  it('credits.expired and hold.expired, once each, after the ledger sweeper', async () => {
    const { agent, user } = await signedInUser(ta.app);
    const ep = (await agent.post('/api/webhook-endpoints').send({ url: 'http://127.0.0.1:9/x', events: ['credits.expired', 'hold.expired'] }).expect(201)).body.endpoint;
    const ledger = ta.deps.ledger;
    await ledger.grant({ transferId: `expiring:${user.id}`, userId: user.id, millicredits: 2_500, kind: 'bonus', actor: 'system', expiresAt: new Date(Date.now() + 200) });
    await ledger.reserve({ holdId: `hold:${user.id}`, userId: user.id, millicredits: 1_000, timeoutMs: 1, actor: 'test' });
    await new Promise((r) => setTimeout(r, 250));
    await ledger.expireHolds();
    await ledger.expireLots();
    await Promise.all([ta.deps.notifications.scanner.runOnce(), ta.deps.notifications.scanner.runOnce()]);
    const types = (await deliveries(ep.id)).map((d) => d.type).sort();
    expect(types).toEqual(['credits.expired', 'hold.expired']);
    const expired = (await deliveries(ep.id)).find((d) => d.type === 'credits.expired')!;
    expect(expired.payload.data.credits).toBe(2.5);
  });
});
