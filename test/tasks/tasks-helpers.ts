import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import request from 'supertest';
import { expect } from 'vitest';
import { createWorker } from '../../src/compose.ts';
import { createLogger } from '../../src/logger.ts';
import { inspectDocument } from '../../src/tasks/document-inspector.ts';
import type { OcrPageResult, OcrProcessOptions, OcrProgress, OcrResult } from '../../src/tasks/ocr-processor.ts';
import type { TaskQueue } from '../../src/tasks/task-queue.ts';
import type { OwnedProcessor, TaskWorker } from '../../src/tasks/task-worker.ts';
import { startQueue } from '../../src/tasks/tasks-runtime.ts';
import { DocumentRejectedError } from '../../src/tasks/tasks-errors.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

export const SHARED_FIXTURES = path.resolve(process.cwd(), '../shared/fixtures/documents');
const LOCAL_FIXTURES = path.resolve(process.cwd(), 'test/fixtures/documents');

/** A document from test/fixtures/documents (the OCR tests' copies), else the shared fixtures. */
export function fixture(name: string): Buffer {
  const local = path.join(LOCAL_FIXTURES, name);
  return fs.readFileSync(fs.existsSync(local) ? local : path.join(SHARED_FIXTURES, name));
}

/** A page as the OCR processor reports it: `source` and `words` as given, the rest plausible. */
export function stubPage(page: number, text: string, source: OcrPageResult['source'] = 'ocr', words = 4): OcrPageResult {
  const ocr = source === 'ocr';
  return {
    page,
    text,
    words,
    confidence: ocr ? 90 : null,
    lowConfidence: false,
    source,
    language: source === 'text-layer' ? null : 'eng',
    rotation: 0,
    width: ocr ? 2550 : 0,
    height: ocr ? 3300 : 0,
    lines: [],
    durationMs: 1,
  };
}

/** A small valid PNG (one page); `marker` is appended after IEND to steer the stub processor. */
export async function tinyPng(marker = ''): Promise<Buffer> {
  const canvas = createCanvas(40, 20);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, 40, 20);
  const png = await canvas.encode('png');
  return Buffer.concat([png, Buffer.from(marker, 'latin1')]);
}

/** What the stub processor does, read from a marker in the file's bytes. */
export interface StubCalls {
  count: number;
  byMarker: Map<string, number>;
  /** The `language` option of each call, in order. */
  languages?: Array<string | null | undefined>;
}

/**
 * A stand-in for the OCR processor: reports every page of the document (page count from the
 * inspector), `stub text page N` per page, in no time. Markers in the bytes change that:
 * `FAIL-ALWAYS` throws every time, `REJECT` throws a DocumentRejectedError-like refusal (`REJECT-ONCE`: the
 * first time only), `SLOW` takes 300 ms per page, `MIXED` reports pages read by OCR, from a text layer and blank in turn.
 */
export function stubProcessor(calls: StubCalls = { count: 0, byMarker: new Map() }): OwnedProcessor & { calls: StubCalls } {
  return {
    calls,
    async process(bytes, kind, onPage?: (p: OcrProgress) => void | Promise<void>, options?: OcrProcessOptions): Promise<OcrResult> {
      calls.count++;
      (calls.languages ??= []).push(options?.language);
      const text = Buffer.from(bytes).toString('latin1');
      const marker = /(FAIL-ALWAYS|REJECT-ONCE|REJECT|SLOW|MIXED)/.exec(text)?.[1] ?? 'none';
      const seen = (calls.byMarker.get(marker) ?? 0) + 1;
      calls.byMarker.set(marker, seen);
      if (marker === 'FAIL-ALWAYS') throw new Error('stub processor failure');
      if (marker === 'REJECT' || (marker === 'REJECT-ONCE' && seen === 1)) {
        throw new DocumentRejectedError('corrupt', 'Page 1 of the PDF could not be read.');
      }
      const pages = kind === 'pdf' ? (await inspectDocument(bytes, { maxPagePixels: 400_000_000, renderDpi: 200 })).pages : 1;
      const results = [];
      for (let page = 1; page <= pages; page++) {
        if (marker === 'SLOW') await new Promise((r) => setTimeout(r, 300));
        // MIXED: pages read by OCR, from a text layer, and blank, in turn
        const source = marker === 'MIXED' ? (['ocr', 'text-layer', 'blank'] as const)[(page - 1) % 3]! : 'ocr';
        results.push(stubPage(page, source === 'blank' ? '' : `stub text page ${page}`, source, source === 'blank' ? 0 : 4));
        await onPage?.({ page, pages });
      }
      return {
        text: results.map((r) => r.text).join('\n\n'),
        pages: results,
        pageCount: pages,
        words: results.reduce((sum, r) => sum + r.words, 0),
        meanConfidence: 90,
        durationMs: pages,
      };
    },
    async close() {},
  };
}

/** The task pipeline of a test app: its queue and (unless off) its worker. */
export interface RunningTasks {
  queue: TaskQueue;
  worker: TaskWorker | undefined;
  stop(): Promise<void>;
}

export interface TasksTestApp extends TestApp {
  tasks: RunningTasks;
  dataDir: string;
  uploadsCount(): number;
}

/**
 * The whole app on a fresh database with the real task pipeline: pg-boss on that database, a
 * worker (unless `worker: false` or env `WORKER=off`) with `createProcessor` (default: {@link stubProcessor}; `'real-ocr'`:
 * the app's OCR processor), retries
 * without delay and fast polling, uploads in a temp data dir.
 */
export async function buildTasksApp(
  options: { env?: Record<string, string>; createProcessor?: (() => OwnedProcessor) | 'real-ocr'; worker?: boolean } = {},
): Promise<TasksTestApp> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-tasks-test-'));
  let queue: TaskQueue | undefined;
  const ta = await buildTestApp({
    env: { DATA_DIR: dataDir, ...options.env },
    overrides: async (t, config) => {
      queue = await startQueue({
        config,
        databaseUrl: t.url,
        logger: createLogger('silent', { pretty: false }),
        queue: { retryDelaySeconds: 0, pollingIntervalSeconds: 0.5 },
      });
      return { queue };
    },
  });
  const startedQueue = queue!;
  const worker =
    (options.worker ?? ta.deps.config.tasks.worker)
      ? await createWorker(ta.deps, {
          queue: startedQueue,
          ...(options.createProcessor === 'real-ocr' ? {} : { createProcessor: options.createProcessor ?? (() => stubProcessor()) }),
        })
      : undefined;
  const running: RunningTasks = {
    queue: startedQueue,
    worker,
    async stop() {
      await worker?.stop();
      await startedQueue.stop();
    },
  };
  const uploads = path.join(dataDir, 'uploads');
  return {
    ...ta,
    tasks: running,
    dataDir,
    uploadsCount() {
      if (!fs.existsSync(uploads)) return 0;
      return fs.readdirSync(uploads, { recursive: true, withFileTypes: true }).filter((d) => d.isFile()).length;
    },
    async close() {
      await running.stop();
      await ta.close();
      fs.rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

let userCounter = 0;

/** Signs a new user up through the API (10 signup credits by default) and returns a logged-in agent. */
export async function signup(app: TestApp['app']): Promise<{ agent: request.Agent; userId: string }> {
  const agent = request.agent(app);
  const email = `tasks-${process.pid}-${Date.now()}-${++userCounter}@example.test`;
  const res = await agent.post('/api/auth/signup').send({ email, password: 'correct horse battery staple', name: 'Task User' }).expect(201);
  return { agent, userId: res.body.user.id as string };
}

export async function balanceOf(agent: request.Agent): Promise<{ available: number; held: number }> {
  const res = await agent.get('/api/credits/balance').expect(200);
  return { available: res.body.available, held: res.body.held };
}

/** Uploads `bytes` as `fileName` to POST /api/tasks. */
export function upload(agent: request.Agent, bytes: Buffer, fileName: string, idempotencyKey?: string) {
  const req = agent.post('/api/tasks');
  if (idempotencyKey) req.set('Idempotency-Key', idempotencyKey);
  return req.attach('file', bytes, fileName);
}

/** Polls GET /api/tasks/:id until the task is completed or failed. */
export async function waitForTask(agent: request.Agent, id: string, timeoutMs = 60_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await agent.get(`/api/tasks/${id}`).expect(200);
    const task = res.body.task as Record<string, unknown>;
    if (task.status === 'completed' || task.status === 'failed') return task;
    if (Date.now() > deadline) throw new Error(`task ${id} still ${String(task.status)} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Expects a problem+json body with `status`. */
export function expectProblem(res: request.Response, status: number) {
  expect(res.status).toBe(status);
  expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
  return res.body as Record<string, unknown>;
}
