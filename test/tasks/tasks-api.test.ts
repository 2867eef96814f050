import crypto from 'node:crypto';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { booksViolations } from '../helpers/factories.ts';
import {
  balanceOf,
  buildTasksApp,
  expectProblem,
  fixture,
  signup,
  tinyPng,
  upload,
  waitForTask,
  type TasksTestApp,
} from './tasks-helpers.ts';

// The whole pipeline (upload → pg-boss → worker → settlement) on a real database, with a stub
// processor that reports every page at once: tasks-ocr.test.ts runs the real OCR.
let ta: TasksTestApp;
beforeAll(async () => {
  ta = await buildTasksApp();
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => ta?.close());

describe('POST /api/credits/estimate with a file', () => {
  it('reads the page count from the upload and prices it: multipage.pdf is 6 pages, 4 credits', async () => {
    const { agent } = await signup(ta.app);
    const res = await agent.post('/api/credits/estimate').attach('file', fixture('multipage.pdf'), 'scan.pdf').expect(200);
    expect(res.body).toEqual({ operation: 'ocr', credits: 4, pages: 6, kind: 'pdf', mimeType: 'application/pdf' });
    const png = await agent.post('/api/credits/estimate').attach('file', fixture('linn.png'), 'linn.png').expect(200);
    expect(png.body).toMatchObject({ credits: 1.5, pages: 1, kind: 'png' });
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });

  it('refuses an unreadable file with the reason, and still answers JSON estimates', async () => {
    const { agent } = await signup(ta.app);
    const body = expectProblem(await agent.post('/api/credits/estimate').attach('file', fixture('invalid.pdf'), 'x.pdf'), 400);
    expect(body).toMatchObject({ reason: 'corrupt', errors: [{ field: 'file' }] });
    await agent.post('/api/credits/estimate').send({ pages: 6 }).expect(200, { operation: 'ocr', credits: 4, pages: 6 });
  });
});

describe('POST /api/tasks', () => {
  it('needs a session', async () => {
    expectProblem(await request(ta.app).post('/api/tasks').attach('file', await tinyPng(), 'a.png'), 401);
  });

  it('queues a document, holds its estimate and settles the pages processed: multipage.pdf → 6 pages, 4 credits', async () => {
    const { agent } = await signup(ta.app);
    const res = await upload(agent, fixture('multipage.pdf'), 'multipage.pdf').expect(202);
    expect(res.headers.location).toBe(`/api/tasks/${res.body.task.id}`);
    expect(res.body.task).toMatchObject({ status: 'queued', fileName: 'multipage.pdf', pages: 6, estimatedCredits: 4, chargedCredits: null });
    const task = await waitForTask(agent, res.body.task.id);
    expect(task).toMatchObject({ status: 'completed', pages: 6, pagesDone: 6, progress: 100, estimatedCredits: 4, chargedCredits: 4, words: 24, error: null });
    expect(await balanceOf(agent)).toEqual({ available: 6, held: 0 });

    const usage = (await agent.get('/api/credits/transfers').expect(200)).body.transfers.filter((t: { kind: string }) => t.kind === 'usage');
    expect(usage).toHaveLength(1);
    expect(usage[0]).toMatchObject({ amount: -4, reference: { type: 'task', id: res.body.task.id } });
  });

  it('reads the type from the content, not the name or the Content-Type', async () => {
    const { agent } = await signup(ta.app);
    const png = await agent.post('/api/tasks').attach('file', await tinyPng(), { filename: 'looks-like.pdf', contentType: 'application/pdf' }).expect(202);
    expect(png.body.task).toMatchObject({ mimeType: 'image/png', fileName: 'looks-like.pdf', pages: 1 });
    const text = Buffer.from('%%% just some text, not a document %%%\n'.repeat(10));
    const body = expectProblem(await agent.post('/api/tasks').attach('file', text, { filename: 'fake.pdf', contentType: 'application/pdf' }), 400);
    expect(body).toMatchObject({ code: 'document_unsupported_type', reason: 'unsupported_type', errors: [{ field: 'file' }] });
    await waitForTask(agent, png.body.task.id);
  });

  it('refuses invalid.pdf with the reason: nothing held, nothing stored, nothing charged', async () => {
    const { agent, userId } = await signup(ta.app);
    const files = ta.uploadsCount();
    const body = expectProblem(await upload(agent, fixture('invalid.pdf'), 'invalid.pdf'), 400);
    expect(body).toMatchObject({ code: 'document_corrupt', detail: 'The file is not a readable PDF.', errors: [{ field: 'file', message: 'The file is not a readable PDF.' }] });
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
    expect(ta.uploadsCount()).toBe(files);
    expect(await ta.t.db('tasks').where({ user_id: userId }).count({ n: '*' })).toEqual([{ n: 0 }]);
    expect(await ta.t.db('holds').count({ n: '*' }).whereRaw("reference_type = 'task'").andWhere('actor', `user:${userId}`)).toEqual([{ n: 0 }]);
  });

  it('refuses hugemono.pdf (35000 × 35000 pixels) quickly, by the pixel cap, without a crash', async () => {
    const { agent } = await signup(ta.app);
    const started = Date.now();
    const body = expectProblem(await upload(agent, fixture('hugemono.pdf'), 'hugemono.pdf'), 400);
    expect(body).toMatchObject({ reason: 'too_many_pixels' });
    expect(String(body.detail)).toContain('35000 × 35000');
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });

  it('says which field is missing', async () => {
    const { agent } = await signup(ta.app);
    let body = expectProblem(await agent.post('/api/tasks').field('note', 'no file'), 400);
    expect(body.errors).toEqual([{ field: 'file', message: 'is required: a PDF, PNG, JPEG, TIFF or WebP document' }]);
    body = expectProblem(await agent.post('/api/tasks').send({ file: 'x' }), 400);
    expect(body.errors).toEqual([{ field: 'file', message: 'is required: send the document as multipart/form-data in the "file" field' }]);
    body = expectProblem(await agent.post('/api/tasks').attach('document', await tinyPng(), 'a.png'), 400);
    expect(body.errors).toEqual([{ field: 'body.document', message: 'is not accepted: send one document in the "file" field' }]);
  });

  it('answers 402 with required, available and topUpUrl when the balance is short, and holds nothing', async () => {
    const { agent, userId } = await signup(ta.app);
    await ta.deps.ledger.debit({ transferId: `test-spend:${userId}`, userId, millicredits: 9000, kind: 'adjustment', actor: 'system', reason: 'test' });
    const files = ta.uploadsCount();
    const body = expectProblem(await upload(agent, fixture('linn.png'), 'linn.png'), 402);
    expect(body).toMatchObject({ code: 'insufficient_credits', required: 1.5, available: 1, topUpUrl: 'http://localhost:3000/pricing' });
    expect(await balanceOf(agent)).toEqual({ available: 1, held: 0 });
    expect(ta.uploadsCount()).toBe(files);
  });

  it('replays an Idempotency-Key: the same task, nothing new held; another file with it is a 409', async () => {
    const { agent } = await signup(ta.app);
    const key = crypto.randomUUID();
    const first = await upload(agent, fixture('multipage.pdf'), 'multipage.pdf', key).expect(202);
    const again = await upload(agent, fixture('multipage.pdf'), 'multipage.pdf', key).expect(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body.task.id).toBe(first.body.task.id);
    const other = expectProblem(await upload(agent, await tinyPng(), 'other.png', key), 409);
    expect(other.code).toBe('idempotency_conflict');
    await waitForTask(agent, first.body.task.id);
    const late = await upload(agent, fixture('multipage.pdf'), 'multipage.pdf', key).expect(202);
    expect(late.body.task).toMatchObject({ id: first.body.task.id, status: 'completed' });
    expect(await balanceOf(agent)).toEqual({ available: 6, held: 0 });
    expect((await agent.get('/api/tasks').expect(200)).body.tasks).toHaveLength(1);
  });

  it('when the same Idempotency-Key races, one task is created and the others return it', async () => {
    const { agent } = await signup(ta.app);
    const key = crypto.randomUUID();
    const bytes = await tinyPng();
    const results = await Promise.all(Array.from({ length: 5 }, () => upload(agent, bytes, 'race.png', key)));
    expect(results.map((r) => r.status)).toEqual([202, 202, 202, 202, 202]);
    expect(new Set(results.map((r) => r.body.task.id)).size).toBe(1);
    await waitForTask(agent, results[0]!.body.task.id);
    expect(await balanceOf(agent)).toEqual({ available: 8.5, held: 0 });
  });

  it('never overspends when concurrent uploads race for a small balance', async () => {
    const { agent, userId } = await signup(ta.app);
    await ta.deps.ledger.debit({ transferId: `test-spend:${userId}`, userId, millicredits: 6000, kind: 'adjustment', actor: 'system', reason: 'test' });
    const files = ta.uploadsCount();
    // 4 credits, 6 uploads of 1.5 credits at once: exactly two fit.
    const results = await Promise.all(Array.from({ length: 6 }, async (_, i) => upload(agent, await tinyPng(`#${i}`), `doc-${i}.png`)));
    const accepted = results.filter((r) => r.status === 202);
    expect(accepted).toHaveLength(2);
    expect(results.filter((r) => r.status === 402)).toHaveLength(4);
    for (const r of accepted) await waitForTask(agent, r.body.task.id);
    expect(await balanceOf(agent)).toEqual({ available: 1, held: 0 });
    // each accepted upload, and each one's JSON result
    expect(ta.uploadsCount()).toBe(files + 4);
  });

  it('answers 413 over MAX_UPLOAD_MB', async () => {
    const small = await buildTasksApp({ env: { MAX_UPLOAD_MB: '1' }, worker: false });
    try {
      const { agent } = await signup(small.app);
      const big = Buffer.concat([await tinyPng(), Buffer.alloc(1024 * 1024)]);
      const body = expectProblem(await upload(agent, big, 'big.png'), 413);
      expect(body.detail).toBe('The file is larger than the upload limit of 1 MB.');
      expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
      expect(small.uploadsCount()).toBe(0);
    } finally {
      await small.close();
    }
  });
});

describe('a job that fails', () => {
  it('is retried 3 times by pg-boss, then its hold is voided: the user pays nothing and sees the error', async () => {
    const { agent } = await signup(ta.app);
    const res = await upload(agent, await tinyPng('FAIL-ALWAYS'), 'broken.png').expect(202);
    const task = await waitForTask(agent, res.body.task.id, 30_000);
    expect(task).toMatchObject({ status: 'failed', chargedCredits: 0, attempts: 4 });
    expect(task.error).toEqual({
      code: 'processing_error',
      detail: 'Processing failed: stub processor failure (after 4 attempts). Nothing was charged.',
    });
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
    const hold = await ta.t.db('holds').where({ reference_type: 'task', reference_id: res.body.task.id }).first();
    expect(hold.status).toBe('voided');
    expectProblem(await agent.get(`/api/tasks/${res.body.task.id}/result`), 409);
  });

  it('fails at once, without retries, when the document is refused while processing', async () => {
    const { agent } = await signup(ta.app);
    const res = await upload(agent, await tinyPng('REJECT'), 'odd.png').expect(202);
    const task = await waitForTask(agent, res.body.task.id, 30_000);
    expect(task).toMatchObject({ status: 'failed', attempts: 1, chargedCredits: 0, error: { code: 'document_corrupt' } });
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });

  it('can be retried under a new hold (idempotently with a key), and then settles normally', async () => {
    const { agent } = await signup(ta.app);
    const res = await upload(agent, await tinyPng('REJECT-ONCE'), 'flaky.png').expect(202);
    const id = res.body.task.id as string;
    expect(await waitForTask(agent, id, 30_000)).toMatchObject({ status: 'failed', attempts: 1 });
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });

    const key = crypto.randomUUID();
    const retry = await agent.post(`/api/tasks/${id}/retry`).set('Idempotency-Key', key).expect(202);
    expect(retry.body.task).toMatchObject({ id, status: 'queued', chargedCredits: null, error: null, estimatedCredits: 1.5 });
    const replay = await agent.post(`/api/tasks/${id}/retry`).set('Idempotency-Key', key).expect(202);
    expect(replay.headers['idempotent-replayed']).toBe('true');
    expect(await waitForTask(agent, id, 30_000)).toMatchObject({ status: 'completed', chargedCredits: 1.5 });
    expect(await balanceOf(agent)).toEqual({ available: 8.5, held: 0 });
    const holds = await ta.t.db('holds').where({ reference_type: 'task', reference_id: id }).orderBy('created_at').pluck('status');
    expect(holds).toEqual(['voided', 'posted']);
    const notFailed = expectProblem(await agent.post(`/api/tasks/${id}/retry`), 409);
    expect(notFailed).toMatchObject({ code: 'task_state', status: 409, taskStatus: 'completed' });
  });
});

describe('reading tasks', () => {
  it('lists own tasks newest first, by status, a page at a time', async () => {
    const { agent } = await signup(ta.app);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await upload(agent, await tinyPng(`list-${i}`), `list-${i}.png`).expect(202)).body.task.id);
    for (const id of ids) await waitForTask(agent, id);
    const failed = (await upload(agent, await tinyPng('REJECT'), 'bad.png').expect(202)).body.task.id;
    await waitForTask(agent, failed);

    const first = await agent.get('/api/tasks?limit=2').expect(200);
    expect(first.body.tasks.map((t: { id: string }) => t.id)).toEqual([failed, ids[2]]);
    const second = await agent.get(`/api/tasks?limit=2&cursor=${first.body.nextCursor}`).expect(200);
    expect(second.body.tasks.map((t: { id: string }) => t.id)).toEqual([ids[1], ids[0]]);
    expect(second.body.nextCursor).toBeNull();
    const onlyFailed = await agent.get('/api/tasks?status=failed').expect(200);
    expect(onlyFailed.body.tasks.map((t: { id: string }) => t.id)).toEqual([failed]);

    let body = expectProblem(await agent.get('/api/tasks?status=done'), 400);
    expect((body.errors as Array<{ field: string }>)[0]!.field).toBe('query.status');
    body = expectProblem(await agent.get('/api/tasks?cursor=nonsense'), 400);
    expect(body.errors).toEqual([{ field: 'query.cursor', message: 'is not a cursor this API produced' }]);
  });

  it('serves the task, its text, and the original file', async () => {
    const { agent } = await signup(ta.app);
    const bytes = fixture('multipage.pdf');
    const id = (await upload(agent, bytes, 'Scan ä "1".pdf').expect(202)).body.task.id;
    await waitForTask(agent, id);
    const got = await agent.get(`/api/tasks/${id}`).expect(200);
    expect(got.body.task).toMatchObject({
      id,
      status: 'completed',
      fileName: 'Scan ä "1".pdf',
      pages: 6,
      progress: 100,
      estimatedCredits: 4,
      chargedCredits: 4,
      error: null,
      links: { result: `/api/tasks/${id}/result`, download: `/api/tasks/${id}/download` },
    });
    expect(Date.parse(got.body.task.completedAt)).toBeGreaterThanOrEqual(Date.parse(got.body.task.createdAt));
    expect(got.body.pageStats).toHaveLength(6);
    expect(got.body.pageStats[0]).toEqual({
      page: 1,
      source: 'ocr',
      words: 4,
      confidence: 90,
      lowConfidence: false,
      language: 'eng',
      rotation: 0,
      chargedCredits: 0.5,
      durationMs: 1,
    });

    const text = await agent.get(`/api/tasks/${id}/result`).expect(200);
    expect(text.headers['content-type']).toBe('text/plain; charset=utf-8');
    expect(text.text).toBe([1, 2, 3, 4, 5, 6].map((n) => `stub text page ${n}`).join('\n\n'));

    const file = await agent.get(`/api/tasks/${id}/download`).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    }).expect(200);
    expect(file.headers['content-type']).toBe('application/pdf');
    expect(file.headers['content-disposition']).toBe(`attachment; filename="Scan _ _1_.pdf"; filename*=UTF-8''Scan%20%C3%A4%20%221%22.pdf`);
    expect(Buffer.compare(file.body as Buffer, bytes)).toBe(0);
  });

  it('stores uploads by generated keys under the data dir, never by the client name', async () => {
    const { agent, userId } = await signup(ta.app);
    const id = (await upload(agent, await tinyPng('name'), '../../etc/passwd.png').expect(202)).body.task.id;
    const row = await ta.t.db('tasks').where({ id, user_id: userId }).first();
    expect(row.file_name).toBe('passwd.png');
    expect(row.storage_key).toMatch(/^[0-9a-f]{2}\/[0-9a-f-]{36}$/);
    expect(row.storage_key).not.toContain('passwd');
    await waitForTask(agent, id);
  });

  it("answers 404 for someone else's task, whatever the route", async () => {
    const owner = await signup(ta.app);
    const other = await signup(ta.app);
    const id = (await upload(owner.agent, await tinyPng('mine'), 'mine.png').expect(202)).body.task.id;
    await waitForTask(owner.agent, id);
    for (const path of ['', '/result', '/download', '/events']) expectProblem(await other.agent.get(`/api/tasks/${id}${path}`), 404);
    expectProblem(await other.agent.delete(`/api/tasks/${id}`), 404);
    expectProblem(await other.agent.post(`/api/tasks/${id}/retry`), 404);
    expectProblem(await other.agent.get('/api/tasks/not-a-uuid'), 404);
    expect((await other.agent.get('/api/tasks').expect(200)).body.tasks).toEqual([]);
    await owner.agent.get(`/api/tasks/${id}`).expect(200);
  });

  it('streams status and progress as server-sent events until the task is final', async () => {
    const { agent } = await signup(ta.app);
    const id = (await upload(agent, Buffer.concat([fixture('multipage.pdf'), Buffer.from('SLOW')]), 'slow.pdf').expect(202)).body.task.id;
    const res = await agent.get(`/api/tasks/${id}/events`).buffer(true).parse((r, cb) => {
      let text = '';
      r.setEncoding('utf8');
      r.on('data', (c: string) => (text += c));
      r.on('end', () => cb(null, text));
    }).expect(200);
    expect(res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    const events = String(res.body)
      .split('\n\n')
      .filter((block) => block.includes('event: task'))
      .map((block) => JSON.parse(block.split('\n').find((l) => l.startsWith('data: '))!.slice(6)).task as { status: string; pagesDone: number; progress: number });
    expect(events.at(-1)).toMatchObject({ status: 'completed', progress: 100, pagesDone: 6 });
    const progress = events.filter((e) => e.status === 'processing').map((e) => e.pagesDone);
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect([...progress].sort((a, b) => a - b)).toEqual(progress);
    // A final task: one event, then the stream ends.
    const again = await agent.get(`/api/tasks/${id}/events`).expect(200);
    expect(again.text.match(/event: task/g)).toHaveLength(1);
  });
});

describe('DELETE /api/tasks/:id', () => {
  it('removes the task and its files and keeps the ledger history', async () => {
    const { agent } = await signup(ta.app);
    const files = ta.uploadsCount();
    const id = (await upload(agent, await tinyPng('delete-me'), 'gone.png').expect(202)).body.task.id;
    await waitForTask(agent, id);
    expect(ta.uploadsCount()).toBe(files + 2); // the upload and its JSON result
    await agent.delete(`/api/tasks/${id}`).expect(204);
    expect(ta.uploadsCount()).toBe(files);
    expectProblem(await agent.get(`/api/tasks/${id}`), 404);
    expectProblem(await agent.get(`/api/tasks/${id}/download`), 404);
    expect(await ta.t.db('task_pages').where({ task_id: id })).toEqual([]);
    const usage = (await agent.get('/api/credits/transfers').expect(200)).body.transfers.filter((t: { kind: string }) => t.kind === 'usage');
    expect(usage).toMatchObject([{ amount: -1.5, reference: { type: 'task', id } }]);
    expect(await balanceOf(agent)).toEqual({ available: 8.5, held: 0 });
  });

  it('voids the hold of an unfinished task: the user pays nothing', async () => {
    // WORKER=off: the web app queues jobs but runs none (`npm run worker` would).
    const idle = await buildTasksApp({ env: { WORKER: 'off' } });
    expect(idle.tasks.worker).toBeUndefined();
    try {
      const { agent } = await signup(idle.app);
      const id = (await upload(agent, await tinyPng(), 'queued.png').expect(202)).body.task.id;
      expect(await balanceOf(agent)).toEqual({ available: 8.5, held: 1.5 });
      await agent.delete(`/api/tasks/${id}`).expect(204);
      expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
      expect(idle.uploadsCount()).toBe(0);
      const job = await idle.t.db.raw(`SELECT state FROM pgboss.job WHERE data->>'taskId' = ?`, [id]);
      expect(job.rows).toEqual([{ state: 'cancelled' }]);
      expect(await booksViolations(idle.t.db)).toEqual([]);
    } finally {
      await idle.close();
    }
  });
});
