import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createPricing } from '../../src/credits/pricing-service.ts';
import { createIdempotencyKeys } from '../../src/idempotency/idempotency-keys.ts';
import { createLedger, type Ledger } from '../../src/ledger/ledger-service.ts';
import { createLogger } from '../../src/logger.ts';
import { createLocalFileStorage } from '../../src/tasks/file-storage.ts';
import type { OcrProgress, OcrResult } from '../../src/tasks/ocr-processor.ts';
import type { TaskJob } from '../../src/tasks/task-queue.ts';
import { AttemptFailedError, createTaskRunner, type DocumentProcessor } from '../../src/tasks/task-runner.ts';
import { createTasksService } from '../../src/tasks/tasks-service.ts';
import { testConfig } from '../helpers/app.ts';
import { createTestDatabase, type TestDatabase } from '../helpers/db.ts';
import { booksViolations, buildUser, fundAccount } from '../helpers/factories.ts';
import { fixture, stubPage, stubProcessor, tinyPng } from './tasks-helpers.ts';

// Settlement without pg-boss: the runner is called the way the worker calls it, including the
// ways a real queue misbehaves (a job delivered again after a crash, twice at once, too late).
let t: TestDatabase;
let ledger: Ledger;
let dataDir: string;
let runner: ReturnType<typeof createTaskRunner>;
let service: ReturnType<typeof createTasksService>;
const queued: TaskJob[] = [];
const C = 1000;

beforeAll(async () => {
  t = await createTestDatabase();
  ledger = createLedger(t.db);
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-runner-test-'));
  const storage = createLocalFileStorage(path.join(dataDir, 'uploads'));
  const logger = createLogger('silent', { pretty: false });
  const pricing = createPricing(t.db);
  runner = createTaskRunner({ db: t.db, ledger, pricing, storage, logger });
  service = createTasksService({
    db: t.db,
    ledger,
    pricing,
    storage,
    queue: { enqueue: async (job) => void queued.push(job) },
    idempotency: createIdempotencyKeys(t.db),
    config: testConfig({ DATA_DIR: dataDir }),
    logger,
  });
});
afterEach(async () => expect(await booksViolations(t.db)).toEqual([]));
afterAll(async () => {
  await t.drop();
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function newTask(bytes?: Buffer, credits = 10) {
  const user = await buildUser(t.db);
  await fundAccount(ledger, user.id, credits * C);
  const task = (await service.create(user.id, { bytes: bytes ?? (await tinyPng()), fileName: 'doc.png' })).task!;
  return { user, task, job: { taskId: task.id, jobId: task.jobId } };
}

const usageTransfers = (taskId: string) => t.db('transfers').where({ kind: 'usage', reference_type: 'task', reference_id: taskId });
const available = async (userId: string) => (await ledger.getBalance(userId)).available;

/** A processor that stops before reporting page `at` until `release()` is called. */
function gatedProcessor(at = 1) {
  let release!: () => void;
  let reached!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const arrived = new Promise<void>((r) => (reached = r));
  const inner = stubProcessor();
  const processor: DocumentProcessor = {
    process: (bytes, kind, onPage) =>
      inner.process(bytes, kind, async (p: OcrProgress) => {
        if (p.page === at) {
          reached();
          await gate;
        }
        await onPage?.(p);
      }),
  };
  return { processor, release, arrived };
}

describe('settlement', () => {
  it('posts the actual cost and completes the task in one go', async () => {
    const { user, task, job } = await newTask();
    expect(await runner.run(job, stubProcessor(), { final: false })).toBe('completed');
    const row = await t.db('tasks').where({ id: task.id }).first();
    expect(row).toMatchObject({ status: 'completed', charged_millicredits: 1500, pages_done: 1, attempts: 1, result_text: 'stub text page 1' });
    expect(await available(user.id)).toBe(8500);
    expect(await usageTransfers(task.id)).toHaveLength(1);
  });

  it('charges the pages actually processed, and releases the rest of the hold', async () => {
    const { user, task, job } = await newTask(fixture('multipage.pdf'));
    const threePages: DocumentProcessor = {
      async process(_bytes, _kind, onPage): Promise<OcrResult> {
        const pages = [1, 2, 3].map((page) => stubPage(page, `p${page}`, 'ocr', 1));
        for (const p of pages) await onPage?.({ page: p.page, pages: 6 });
        return { text: 'p1\n\np2\n\np3', pages, pageCount: 3, words: 3, meanConfidence: 90, durationMs: 3 };
      },
    };
    expect(await runner.run(job, threePages, { final: false })).toBe('completed');
    expect((await t.db('tasks').where({ id: task.id }).first()).charged_millicredits).toBe(2500);
    expect(await available(user.id)).toBe(7500);
  });

  it('never charges more than the hold, even if the price went up meanwhile', async () => {
    const { user, task, job } = await newTask();
    await t.db('operation_prices').where({ operation: 'ocr' }).update({ per_unit_millicredits: 2000 });
    try {
      expect(await runner.run(job, stubProcessor(), { final: false })).toBe('completed');
    } finally {
      await t.db('operation_prices').where({ operation: 'ocr' }).update({ per_unit_millicredits: 500 });
    }
    expect((await t.db('tasks').where({ id: task.id }).first()).charged_millicredits).toBe(1500);
    expect(await available(user.id)).toBe(8500);
  });
});

describe('a worker killed mid-job', () => {
  it('is retried; when its first attempt had already posted, the retry posts nothing', async () => {
    const { user, task, job } = await newTask();
    expect(await runner.run(job, stubProcessor(), { final: false })).toBe('completed');
    // pg-boss never heard "complete" (the process died after the commit): it delivers the job again.
    expect(await runner.run(job, stubProcessor(), { final: false })).toBe('skipped');
    expect(await runner.run(job, stubProcessor(), { final: true })).toBe('skipped');
    expect(await usageTransfers(task.id)).toHaveLength(1);
    expect(await available(user.id)).toBe(8500);
  });

  it('is restarted when it died before settling: the new attempt settles it, once', async () => {
    const { user, task, job } = await newTask();
    // The first attempt started and died without a trace but its 'processing' row.
    await t.db('tasks').where({ id: task.id }).update({ status: 'processing', attempts: 1, pages_done: 0 });
    expect(await runner.run(job, stubProcessor(), { final: false })).toBe('completed');
    expect((await t.db('tasks').where({ id: task.id }).first()).attempts).toBe(2);
    expect(await usageTransfers(task.id)).toHaveLength(1);
    expect(await available(user.id)).toBe(8500);
  });

  it('when the same job runs twice at once (an expired attempt still running), it is settled once', async () => {
    const { user, task, job } = await newTask(fixture('multipage.pdf'));
    const outcomes = await Promise.all([runner.run(job, stubProcessor(), { final: false }), runner.run(job, stubProcessor(), { final: false })]);
    expect(outcomes).toContain('completed');
    expect(outcomes.filter((o) => o === 'completed')).toHaveLength(1);
    expect(await usageTransfers(task.id)).toHaveLength(1);
    expect(await available(user.id)).toBe(6000);
  });

  it('an older attempt stops at its next page once a newer attempt has taken the task over', async () => {
    const { user, task, job } = await newTask(fixture('multipage.pdf'));
    const old = gatedProcessor(3);
    const first = runner.run(job, old.processor, { final: false });
    await old.arrived;
    expect(await runner.run(job, stubProcessor(), { final: false })).toBe('completed');
    old.release();
    expect(await first).toBe('superseded');
    expect(await usageTransfers(task.id)).toHaveLength(1);
    expect(await available(user.id)).toBe(6000);
  });

  it('a job that never finishes: the timeout sweeper voids the hold and a later completion charges nothing', async () => {
    const { user, task, job } = await newTask();
    const stuck = gatedProcessor(1);
    const run = runner.run(job, stuck.processor, { final: false });
    await stuck.arrived;
    expect(await ledger.expireHolds(new Date(Date.now() + 2 * 3_600_000))).toBeGreaterThanOrEqual(1);
    expect(await available(user.id)).toBe(10_000);
    stuck.release();
    expect(await run).toBe('failed');
    const row = await t.db('tasks').where({ id: task.id }).first();
    expect(row).toMatchObject({ status: 'failed', charged_millicredits: 0, error_code: 'hold_expired' });
    expect(await usageTransfers(task.id)).toHaveLength(0);
    expect(await available(user.id)).toBe(10_000);
    // pg-boss may still deliver it again: nothing happens.
    expect(await runner.run(job, stubProcessor(), { final: true })).toBe('skipped');
  });

  it('the task sweeper fails a queued task whose hold timed out before any worker took it', async () => {
    const { user, task, job } = await newTask();
    await ledger.expireHolds(new Date(Date.now() + 2 * 3_600_000));
    expect(await runner.sweep()).toBeGreaterThanOrEqual(1);
    expect(await t.db('tasks').where({ id: task.id }).first()).toMatchObject({ status: 'failed', error_code: 'hold_expired' });
    expect(await runner.run(job, stubProcessor(), { final: false })).toBe('skipped');
    expect(await available(user.id)).toBe(10_000);
  });

  it('a shutting-down worker hands the attempt back: the task is queued again and its hold kept', async () => {
    const { user, task, job } = await newTask(fixture('multipage.pdf'));
    const control = { stopping: true };
    const error = await runner.run(job, stubProcessor(), { final: false, control }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AttemptFailedError);
    expect((error as AttemptFailedError).final).toBe(false);
    expect(await t.db('tasks').where({ id: task.id }).first()).toMatchObject({ status: 'queued', pages_done: 0 });
    expect((await ledger.getBalance(user.id)).held).toBe(4000);
    expect(await runner.run(job, stubProcessor(), { final: false })).toBe('completed');
    expect(await available(user.id)).toBe(6000);
  });
});

describe('failure', () => {
  it('on the final attempt voids the hold and fails the task in one transaction', async () => {
    const { user, task, job } = await newTask(await tinyPng('FAIL-ALWAYS'));
    const first = await runner.run(job, stubProcessor(), { final: false }).catch((e: unknown) => e);
    expect(first).toMatchObject({ final: false });
    expect(await t.db('tasks').where({ id: task.id }).first()).toMatchObject({ status: 'queued', error_code: 'processing_error' });
    expect((await ledger.getBalance(user.id)).held).toBe(1500);
    const last = await runner.run(job, stubProcessor(), { final: true }).catch((e: unknown) => e);
    expect(last).toMatchObject({ final: true });
    expect(await t.db('tasks').where({ id: task.id }).first()).toMatchObject({ status: 'failed', charged_millicredits: 0, attempts: 2 });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 10_000, held: 0 });
    // The dead-letter copy of the job arrives afterwards: nothing left to do.
    expect(await runner.fail(job, { code: 'processing_error', detail: 'x' })).toBe(false);
  });

  it('the dead-letter worker fails a task whose last attempt died with its worker', async () => {
    const { user, task, job } = await newTask();
    await t.db('tasks').where({ id: task.id }).update({ status: 'processing', attempts: 4 });
    expect(await runner.fail(job, { code: 'processing_error', detail: 'Processing failed: job failed by timeout in active state. Nothing was charged.' })).toBe(true);
    expect(await t.db('tasks').where({ id: task.id }).first()).toMatchObject({ status: 'failed', charged_millicredits: 0 });
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 10_000, held: 0 });
  });

  it('a job of an earlier try is ignored after the user retried the task', async () => {
    const { user, task, job } = await newTask(await tinyPng('REJECT'));
    expect(await runner.run(job, stubProcessor(), { final: false })).toBe('failed');
    const { task: retried } = await service.retry(user.id, task.id);
    expect(retried.jobId).not.toBe(job.jobId);
    expect(await runner.run(job, stubProcessor(), { final: true })).toBe('skipped');
    expect(await runner.fail(job, { code: 'processing_error', detail: 'stale' })).toBe(false);
    expect(await t.db('tasks').where({ id: task.id }).first()).toMatchObject({ status: 'queued' });
    expect((await ledger.getBalance(user.id)).held).toBe(1500);
    await service.remove(user.id, task.id);
    expect(await ledger.getBalance(user.id)).toMatchObject({ available: 10_000, held: 0 });
  });
});
