import { cookieHeader } from './http-bench.ts';
import crypto from 'node:crypto';
import fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../src/config.ts';
import type { Db } from '../src/db/database.ts';
import { createLedger } from '../src/ledger/ledger-service.ts';
import { createLogger } from '../src/logger.ts';
import { startTally } from '../src/tally.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE_DIRS = [path.join(ROOT, 'test/fixtures/documents'), path.resolve(ROOT, '../shared/fixtures/documents')];
/** The measured document: a 6-page PDF of scans (one page also carries an earlier OCR's text layer). */
const DOCUMENT = 'multipage.pdf';

function fixture(name: string): Buffer {
  for (const dir of FIXTURE_DIRS) if (fs.existsSync(path.join(dir, name))) return fs.readFileSync(path.join(dir, name));
  throw new Error(`fixture ${name} not found in ${FIXTURE_DIRS.join(' or ')}`);
}

const perMinute = (pages: number, ms: number) => (pages / ms) * 60_000;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/** A tiny HTTP client with one session cookie. */
function client(base: string) {
  let cookie = '';
  return async (method: string, url: string, body?: FormData | object, headers: Record<string, string> = {}) => {
    const init: RequestInit = { method, headers: { Accept: 'application/json', ...headers, ...(cookie ? { Cookie: cookie } : {}) } };
    if (body instanceof FormData) init.body = body;
    else if (body) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
    }
    // While the in-process worker renders a huge page, the event loop is busy for seconds and
    // the server may drop an idle keep-alive connection: retry the idempotent reads.
    let res: Response;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await fetch(base + url, init);
        break;
      } catch (error) {
        if (method !== 'GET' || attempt >= 5) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
      }
    }
    const set = cookieHeader(res.headers.getSetCookie());
    if (set) cookie = set;
    const json = (await res.json().catch(() => null)) as Record<string, unknown> | null;
    if (!res.ok) throw new Error(`${method} ${url} → ${res.status} ${JSON.stringify(json)}`);
    return json!;
  };
}

interface Measured {
  name: string;
  pages: number;
  ocrPages: number;
  latencyMs: number;
  processingMs: number;
  /** From the upload's answer to the worker starting the job, ms. */
  handOverMs: number;
}

/** Uploads every document through the API of a real app + worker and waits until all completed. */
async function measurePipeline(db: Db, url: string): Promise<{ ms: number; docs: Measured[]; ocrWorkers: number }> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-tasks-'));
  const config = loadConfig({
    NODE_ENV: 'production',
    DATABASE_URL: url,
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: '0',
    STRIPE_EMULATOR_PORT: '0',
    SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
    LOG_LEVEL: 'error',
    WORKER: 'on',
    WORKER_CONCURRENCY: process.env.WORKER_CONCURRENCY ?? '1',
    ...(process.env.OCR_WORKERS ? { OCR_WORKERS: process.env.OCR_WORKERS } : {}),
  });
  const tally = await startTally(config, createLogger('error', { pretty: false }));
  try {
    const api = client(tally.url);
    const signup = await api('POST', '/api/auth/signup', { email: `bench-${crypto.randomUUID()}@example.test`, password: 'correct horse battery staple', name: 'Bench' });
    const userId = (signup.user as { id: string }).id;
    await createLedger(db).grant({ transferId: `bench-tasks-${userId}`, userId, millicredits: 1_000_000, kind: 'bonus', actor: 'bench', reason: 'bench credits' });

    const send = async (name: string) => {
      const form = new FormData();
      form.append('file', new Blob([new Uint8Array(fixture(name))]), name);
      return ((await api('POST', '/api/tasks', form)).task as { id: string }).id;
    };
    const settle = async (id: string, started: number) => {
      for (;;) {
        const body = await api('GET', `/api/tasks/${id}`);
        const task = body.task as { status: string; pages: number; durationMs: number; fileName: string; error: unknown; createdAt: string; startedAt: string };
        if (task.status === 'failed') throw new Error(`bench task ${task.fileName} failed: ${JSON.stringify(task.error)}`);
        if (task.status === 'completed') {
          const stats = body.pageStats as Array<{ source: string }>;
          return {
            name: task.fileName,
            pages: task.pages,
            ocrPages: stats.filter((p) => p.source === 'ocr').length,
            latencyMs: performance.now() - started,
            processingMs: task.durationMs,
            handOverMs: Date.parse(task.startedAt) - Date.parse(task.createdAt),
          };
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    // Warm-up: one small document through the whole path (the Tesseract workers start with the app).
    await settle(await send('trivial.pdf'), performance.now());

    const started = performance.now();
    const docs = [await settle(await send(DOCUMENT), started)];
    return { ms: performance.now() - started, docs, ocrWorkers: config.tasks.ocrWorkers };
  } finally {
    await tally.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The Tesseract command-line pipeline on the same document, as a person would run it by hand:
 * `pdftoppm -r 300` renders every page, then `tesseract <page> <out> -l eng` reads each page in
 * turn. Installs Debian's `tesseract-ocr` and `poppler-utils` with apt-get when they are missing
 * (as root); returns why not when that is impossible.
 */
async function measureCli(name: string): Promise<{ ms: number; renderMs: number; pages: number } | { skipped: string }> {
  const missing = () => ['tesseract', 'pdftoppm'].filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
  if (missing().length > 0) {
    if (process.getuid?.() !== 0 || spawnSync('sh', ['-c', 'command -v apt-get']).status !== 0) {
      return { skipped: `${missing().join(' and ')} not installed, and apt-get is not available to this user: apt-get install tesseract-ocr poppler-utils` };
    }
    console.log('  installing tesseract-ocr and poppler-utils with apt-get (once)…');
    spawnSync('apt-get', ['update', '-qq'], { stdio: 'ignore' });
    const installed = spawnSync('apt-get', ['install', '-y', '-qq', 'tesseract-ocr', 'poppler-utils'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
    if (installed.status !== 0 || missing().length > 0) return { skipped: `apt-get could not install ${missing().join(' and ')}` };
  }
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-cli-'));
  try {
    const input = path.join(dir, name);
    fs.writeFileSync(input, fixture(name));
    const run = (command: string, args: string[]) => {
      const done = spawnSync(command, args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
      if (done.status !== 0) throw new Error(`${command} ${args.join(' ')} failed: ${done.stderr.toString().slice(0, 500)}`);
    };
    const started = performance.now();
    run('pdftoppm', ['-r', '300', input, 'page']);
    const renderMs = performance.now() - started;
    const pages = fs.readdirSync(dir).filter((file) => /^page-\d+\.ppm$/.test(file)).sort();
    for (const page of pages) run('tesseract', [page, page.replace(/\.ppm$/, ''), '-l', 'eng']);
    return { ms: performance.now() - started, renderMs, pages: pages.length };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * `npm run bench` (tasks part), in one run on the same 6-page scanned PDF (multipage.pdf):
 *
 * - Tally: upload over HTTP to a real app with its in-process worker on `url` (pool of
 *   OCR_WORKERS Tesseract workers, warm), pg-boss, OCR, settlement, polled until completed;
 *   the queue's hand-over (uploaded → started) is printed too;
 * - the Tesseract command line: `pdftoppm -r 300`, then `tesseract` on each page in turn.
 *
 * Prints both times and pages per minute. The app is warmed up first with a small document.
 *
 * @param db the bench database (migrated and seeded), used to grant the bench user credits
 * @param url its PostgreSQL URL, for the app and pg-boss
 */
export async function benchTasks(db: Db, url: string): Promise<void> {
  const name = DOCUMENT;
  const pipeline = await measurePipeline(db, url);
  const doc = pipeline.docs[0]!;
  console.log(
    `  Tally pipeline (HTTP upload → pg-boss → ${pipeline.ocrWorkers} warm Tesseract workers → settle): ${name}, ` +
      `${doc.pages} pages (${doc.ocrPages} OCR, ${doc.pages - doc.ocrPages} text layer) in ${seconds(doc.latencyMs)} → ` +
      `${perMinute(doc.pages, doc.latencyMs).toFixed(1)} pages/min (queue hand-over ${doc.handOverMs.toFixed(0)} ms)`,
  );
  const cli = await measureCli(name);
  if ('skipped' in cli) {
    console.log(`  Tesseract CLI pipeline: skipped — ${cli.skipped}`);
    return;
  }
  console.log(
    `  Tesseract CLI pipeline (pdftoppm -r 300, then tesseract -l eng per page): ${cli.pages} pages in ${seconds(cli.ms)} ` +
      `(rendering ${seconds(cli.renderMs)}) → ${perMinute(cli.pages, cli.ms).toFixed(1)} pages/min`,
  );
  console.log(`  Tally / CLI speed: ${(cli.ms / doc.latencyMs).toFixed(2)}× (above 1: Tally is faster)`);
}
