import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { createWorker, OEM } from 'tesseract.js';
import { renderPageAsImage } from 'unpdf';
import { loadConfig } from '../src/config.ts';
import type { Db } from '../src/db/database.ts';
import { createLedger } from '../src/ledger/ledger-service.ts';
import { createLogger } from '../src/logger.ts';
import { startTally } from '../src/tally.ts';
import { inspectDocument } from '../src/tasks/document-inspector.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const FIXTURE_DIRS = [path.join(ROOT, 'test/fixtures/documents'), path.resolve(ROOT, '../shared/fixtures/documents')];
/** The measured documents: one scanned image, and a 6-page PDF (5 scanned pages, 1 with a text layer). */
const DOCUMENTS = ['linn.png', 'multipage.pdf'];

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
    const res = await fetch(base + url, init);
    const set = res.headers.get('set-cookie');
    if (set) cookie = set.split(';')[0]!;
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
}

/** Uploads every document through the API of a real app + worker and waits until all completed. */
async function measurePipeline(db: Db, url: string): Promise<{ ms: number; docs: Measured[]; concurrency: number }> {
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
        const task = body.task as { status: string; pages: number; durationMs: number; fileName: string; error: unknown };
        if (task.status === 'failed') throw new Error(`bench task ${task.fileName} failed: ${JSON.stringify(task.error)}`);
        if (task.status === 'completed') {
          const stats = body.pageStats as Array<{ source: string }>;
          return { name: task.fileName, pages: task.pages, ocrPages: stats.filter((p) => p.source === 'ocr').length, latencyMs: performance.now() - started, processingMs: task.durationMs };
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    // Warm-up: the worker starts its Tesseract worker on the first job (the baseline's is started untimed too).
    await settle(await send('linn.png'), performance.now());

    const started = performance.now();
    const ids = [];
    for (const name of DOCUMENTS) ids.push({ id: await send(name), at: performance.now() });
    const docs = await Promise.all(ids.map(({ id, at }) => settle(id, at)));
    return { ms: performance.now() - started, docs, concurrency: config.tasks.workerConcurrency };
  } finally {
    await tally.stop();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

/**
 * The same pages through tesseract.js alone: one worker, the same model and settings the OCR
 * processor uses, images prepared beforehand (PDF pages rendered at OCR_RENDER_DPI, untimed).
 */
async function measureTesseract(): Promise<{ ms: number; pages: number }> {
  const limits = { renderDpi: 200, maxPagePixels: 100_000_000 };
  const images: Array<{ image: Buffer; dpi: number }> = [];
  for (const name of DOCUMENTS) {
    const bytes = fixture(name);
    const info = await inspectDocument(bytes, limits);
    if (info.kind !== 'pdf') {
      images.push({ image: bytes, dpi: 0 });
      continue;
    }
    for (let page = 1; page <= info.pages; page++) {
      const png = await renderPageAsImage(new Uint8Array(bytes), page, { canvasImport: () => import('@napi-rs/canvas'), scale: limits.renderDpi / 72 });
      images.push({ image: Buffer.from(png), dpi: limits.renderDpi });
    }
  }
  const require = createRequire(import.meta.url);
  const langPath = path.join(path.dirname(require.resolve('@tesseract.js-data/eng/package.json')), '4.0.0_best_int');
  const worker = await createWorker('eng', OEM.LSTM_ONLY, { langPath, gzip: true, cacheMethod: 'none', errorHandler: () => undefined });
  try {
    await worker.recognize(images[0]!.image); // warm-up, like the pipeline's
    const started = performance.now();
    for (const { image, dpi } of images) {
      await worker.setParameters({ user_defined_dpi: String(dpi) });
      await worker.recognize(image, {}, { text: true, blocks: false, hocr: false, tsv: false });
    }
    return { ms: performance.now() - started, pages: images.length };
  } finally {
    await worker.terminate();
  }
}

/**
 * `npm run bench` (tasks part): pages per minute through the whole task pipeline — upload over
 * HTTP to a real app with its in-process worker on `url`, pg-boss, OCR, settlement, polled until
 * every task completed — next to tesseract.js alone on the same pages, in the same run. Both
 * sides are warmed up first (Tesseract worker started). Takes about a minute on 2 cores.
 *
 * @param db the bench database (migrated and seeded), used to grant the bench user credits
 * @param url its PostgreSQL URL, for the app and pg-boss
 */
export async function benchTasks(db: Db, url: string): Promise<void> {
  const pipeline = await measurePipeline(db, url);
  const pages = pipeline.docs.reduce((n, d) => n + d.pages, 0);
  const ocrPages = pipeline.docs.reduce((n, d) => n + d.ocrPages, 0);
  const alone = await measureTesseract();
  const pipelinePpm = perMinute(pages, pipeline.ms);
  const alonePpm = perMinute(alone.pages, alone.ms);
  console.log(
    `  whole pipeline (HTTP upload → pg-boss → worker → OCR → settle), WORKER_CONCURRENCY=${pipeline.concurrency}: ` +
      `${pages} pages (${ocrPages} OCR, ${pages - ocrPages} text layer) in ${seconds(pipeline.ms)} → ${pipelinePpm.toFixed(1)} pages/min`,
  );
  console.log(`  tesseract.js alone, same pages (1 worker, images pre-rendered): ${alone.pages} pages in ${seconds(alone.ms)} → ${alonePpm.toFixed(1)} pages/min`);
  console.log(`  pipeline / tesseract.js alone: ${(pipelinePpm / alonePpm).toFixed(2)}×`);
  for (const d of pipeline.docs) {
    console.log(`    ${d.name.padEnd(14)} ${String(d.pages).padStart(2)} pages: upload → completed ${seconds(d.latencyMs)} (processing ${seconds(d.processingMs)})`);
  }
}
