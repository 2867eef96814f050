import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Trx } from '../../src/db/database.ts';
import { createLogger } from '../../src/logger.ts';
import type { TaskJob, TaskQueue } from '../../src/tasks/task-queue.ts';
import { startQueue } from '../../src/tasks/tasks-runtime.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';
import { balanceOf, expectProblem, signup, tinyPng, upload } from './tasks-helpers.ts';

// The upload route: requireCredits holds, the handler creates the task, and pg-boss's job row is
// inserted in the same transaction. No worker runs here: jobs stay in pgboss.job to be looked at.
let ta: TestApp;
let queue: TaskQueue;
let dataDir: string;
/** What the queue does on the next enqueue: pass through, fail after inserting, or stall. */
let nextEnqueue: ((job: TaskJob, trx?: Trx) => Promise<void>) | undefined;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-upload-trx-'));
  ta = await buildTestApp({
    env: { DATA_DIR: dataDir, WORKER: 'off' },
    overrides: async (t, config) => {
      queue = await startQueue({ config, databaseUrl: t.url, logger: createLogger('silent', { pretty: false }) });
      return {
        queue: {
          enqueue: (job, trx) => {
            const hook = nextEnqueue;
            nextEnqueue = undefined;
            return hook ? hook(job, trx) : queue.enqueue(job, trx);
          },
          cancel: (job) => queue.cancel(job),
        },
      };
    },
  });
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => {
  await queue?.stop();
  await ta?.close();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const jobRow = async (jobId: string) => (await ta.t.db.raw('SELECT id, state FROM pgboss.job WHERE id = ?', [jobId])).rows[0];
const userRows = async (table: 'tasks' | 'holds', userId: string) =>
  table === 'tasks'
    ? ta.t.db('tasks').where({ user_id: userId })
    : ta.t.db('holds').join('accounts', 'accounts.id', 'holds.account_id').where('accounts.user_id', userId).select('holds.*');
const uploadedFiles = () => (fs.existsSync(path.join(dataDir, 'uploads')) ? fs.readdirSync(path.join(dataDir, 'uploads'), { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length : 0);

describe('POST /api/tasks queues the job in the transaction of the hold and the task', () => {
  it('the job row exists as soon as the task does, with the task job id', async () => {
    const { agent } = await signup(ta.app);
    const res = await upload(agent, await tinyPng(), 'a.png').expect(202);
    const task = await ta.t.db('tasks').where({ id: res.body.task.id }).first();
    expect(await jobRow(task.job_id)).toMatchObject({ id: task.job_id, state: 'created' });
    expect(await balanceOf(agent)).toEqual({ available: 8.5, held: 1.5 });
  });

  it('a failure right after the job was inserted leaves no task, no job, no hold and no file', async () => {
    const { agent, userId } = await signup(ta.app);
    const files = uploadedFiles();
    let sentJobId: string | undefined;
    nextEnqueue = async (job, trx) => {
      await queue.enqueue(job, trx);
      sentJobId = job.jobId;
      throw new Error('the process died here');
    };
    await upload(agent, await tinyPng(), 'a.png').expect(500);
    expect(sentJobId).toBeDefined();
    expect(await jobRow(sentJobId!)).toBeUndefined();
    expect(await userRows('tasks', userId)).toEqual([]);
    expect(await userRows('holds', userId)).toEqual([]);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
    expect(uploadedFiles()).toBe(files);
  });

  it('while the job is being queued, nothing of the task is visible: a process dying there leaves no task waiting for its hold to time out', async () => {
    const { agent, userId } = await signup(ta.app);
    let reached!: () => void;
    const atEnqueue = new Promise<void>((r) => (reached = r));
    let release!: (err: Error) => void;
    nextEnqueue = () => {
      reached();
      return new Promise<void>((_, reject) => (release = reject));
    };
    const pending = upload(agent, await tinyPng(), 'a.png').then((r) => r);
    await atEnqueue;
    // Seen from any other connection (a restarted process): no task, no hold.
    expect(await userRows('tasks', userId)).toEqual([]);
    expect(await userRows('holds', userId)).toEqual([]);
    release(new Error('killed'));
    expect((await pending).status).toBe(500);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });
});

describe('Idempotency-Key of an upload', () => {
  it('is remembered after its task is deleted: the same request replays the first answer and holds nothing', async () => {
    const { agent, userId } = await signup(ta.app);
    const key = crypto.randomUUID();
    const bytes = await tinyPng();
    const first = await upload(agent, bytes, 'kept.png', key).expect(202);
    await agent.delete(`/api/tasks/${first.body.task.id}`).expect(204);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });

    const again = await upload(agent, bytes, 'kept.png', key).expect(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.task).toMatchObject({ id: first.body.task.id, fileName: 'kept.png' });
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
    expect(await userRows('tasks', userId)).toEqual([]);
    expect(await userRows('holds', userId)).toHaveLength(1); // the first, voided on delete

    const other = expectProblem(await upload(agent, await tinyPng('other'), 'other.png', key), 409);
    expect(other.code).toBe('idempotency_conflict');
  });

  it('is forgotten after 24 hours: the same key then makes a new task', async () => {
    const { agent, userId } = await signup(ta.app);
    const key = crypto.randomUUID();
    const bytes = await tinyPng();
    const first = await upload(agent, bytes, 'old.png', key).expect(202);
    await agent.delete(`/api/tasks/${first.body.task.id}`).expect(204);
    await ta.t.db('idempotency_keys').where({ user_id: userId, key }).update({ created_at: new Date(Date.now() - 25 * 3_600_000) });
    const later = await upload(agent, bytes, 'old.png', key).expect(202);
    expect(later.headers['idempotent-replayed']).toBeUndefined();
    expect(later.body.task.id).not.toBe(first.body.task.id);
    expect(await ta.deps.idempotency.purgeExpired()).toBe(0); // the new use replaced the expired row
    expect(await balanceOf(agent)).toEqual({ available: 8.5, held: 1.5 });
  });
});
