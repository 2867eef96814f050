import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { booksViolations } from '../helpers/factories.ts';
import {
  balanceOf,
  buildTasksApp,
  expectProblem,
  fixture,
  signup,
  stubProcessor,
  tinyPng,
  upload,
  waitForTask,
  type StubCalls,
  type TasksTestApp,
} from './tasks-helpers.ts';

// Languages, result formats and per-page prices through the API, with the stub processor (the
// real OCR of the same routes is in tasks-ocr.test.ts).
const calls: StubCalls = { count: 0, byMarker: new Map() };
let ta: TasksTestApp;
beforeAll(async () => {
  ta = await buildTasksApp({ createProcessor: () => stubProcessor(calls) });
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => ta?.close());

describe('prices that follow the work', () => {
  it('holds the worst case, then charges OCR pages 0.5, text-layer pages 0.1 and blank pages nothing, with the breakdown', async () => {
    const { agent } = await signup(ta.app);
    // 6 pages: the stub reads them as OCR, text layer, blank, OCR, text layer, blank
    const bytes = Buffer.concat([fixture('multipage.pdf'), Buffer.from('\n% MIXED\n')]);
    const created = await upload(agent, bytes, 'mixed.pdf').expect(202);
    expect(created.body.task.estimatedCredits).toBe(4); // 1 + 6 × 0.5, the worst case
    const task = await waitForTask(agent, created.body.task.id);
    expect(task).toMatchObject({ status: 'completed', chargedCredits: 2.2 }); // 1 + 2 × 0.5 + 2 × 0.1 + 2 × 0
    expect(await balanceOf(agent)).toEqual({ available: 7.8, held: 0 });

    const got = (await agent.get(`/api/tasks/${created.body.task.id}`).expect(200)).body;
    expect(got.pageStats.map((p: { source: string; chargedCredits: number }) => [p.source, p.chargedCredits])).toEqual([
      ['ocr', 0.5],
      ['text-layer', 0.1],
      ['blank', 0],
      ['ocr', 0.5],
      ['text-layer', 0.1],
      ['blank', 0],
    ]);
    const usage = (await agent.get('/api/credits/transfers').expect(200)).body.transfers.find((t: { kind: string }) => t.kind === 'usage');
    expect(usage.reason).toBe('OCR of mixed.pdf: 2 OCR pages × 0.5 + 2 text-layer pages × 0.1 + 2 blank pages × 0 + 1 per document');

    const page = await agent.get(`/tasks/${created.body.task.id}`).expect(200);
    expect(page.text).toContain('2 pages read by OCR');
    expect(page.text).toContain('2 pages read from their text layer');
    expect(page.text).toContain('2 blank pages, free');
  });
});

describe('language at upload', () => {
  it('passes the chosen language to the processor, shows it, and prices it the same', async () => {
    const { agent } = await signup(ta.app);
    const before = calls.languages?.length ?? 0;
    const created = await agent.post('/api/tasks').field('language', 'fra').attach('file', await tinyPng('lang-fra'), 'page.png').expect(202);
    expect(created.body.task).toMatchObject({ language: 'fra', estimatedCredits: 1.5 });
    await waitForTask(agent, created.body.task.id);
    const auto = await agent.post('/api/tasks').field('language', '').attach('file', await tinyPng('lang-auto'), 'auto.png').expect(202);
    expect(auto.body.task.language).toBeNull();
    await waitForTask(agent, auto.body.task.id);
    expect(calls.languages!.slice(before)).toEqual(['fra', null]);
    const page = await agent.get(`/tasks/${created.body.task.id}`).expect(200);
    expect(page.text).toContain('French');
  });

  it('refuses an unknown language with a 400 naming the field, and holds nothing', async () => {
    const { agent } = await signup(ta.app);
    const res = await agent.post('/api/tasks').field('language', 'klingon').attach('file', await tinyPng('lang-bad'), 'page.png');
    const problem = expectProblem(res, 400);
    expect(problem.errors).toEqual([{ field: 'body.language', message: expect.stringContaining('eng, fra, deu, spa') }]);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });
});

describe('GET /api/tasks/:id/result?format=', () => {
  it('serves the text, the JSON result, and says 404 for a PDF that was not made', async () => {
    const { agent } = await signup(ta.app);
    const id = (await upload(agent, await tinyPng('formats'), 'scan.png').expect(202)).body.task.id;
    await waitForTask(agent, id);
    const txt = await agent.get(`/api/tasks/${id}/result?format=txt`).expect(200);
    expect(txt.text).toBe('stub text page 1');
    const json = await agent.get(`/api/tasks/${id}/result?format=json&download`).expect(200);
    expect(json.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(json.headers['content-disposition']).toContain('scan.json');
    expect(json.body).toMatchObject({ fileName: 'scan.png', pageCount: 1, pages: [{ page: 1, source: 'ocr', language: 'eng', text: 'stub text page 1' }] });
    expectProblem(await agent.get(`/api/tasks/${id}/result?format=pdf`), 404);
    const bad = expectProblem(await agent.get(`/api/tasks/${id}/result?format=docx`), 400);
    expect((bad.errors as Array<{ field: string }>)[0]!.field).toBe('query.format');
  });
});
