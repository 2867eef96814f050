import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { booksViolations } from '../helpers/factories.ts';
import { wordOverlap } from '../helpers/text-overlap.ts';
import { balanceOf, buildTasksApp, expectProblem, fixture, signup, upload, waitForTask, type TasksTestApp } from './tasks-helpers.ts';

// "Done when", as a new user would try it: sign up (10 credits), upload through the API, the
// worker OCRs with tesseract.js for real, the ledger settles. The one test file that runs real OCR
// through the pipeline (about 30 s: linn.png ~6 s, multipage.pdf's 6 pages ~25 s on 2 cores).
let ta: TasksTestApp;
beforeAll(async () => {
  ta = await buildTasksApp({ createProcessor: 'real-ocr' });
});
afterAll(async () => ta?.close());

describe('OCR through the whole pipeline', () => {
  it('a new user uploads linn.png, it completes with ≥ 90% of linn.txt’s words, and the balance is exactly 10 − 1.5; then multipage.pdf costs 4', async () => {
    const { agent } = await signup(ta.app);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });

    const linn = await upload(agent, fixture('linn.png'), 'linn.png').expect(202);
    expect(linn.body.task).toMatchObject({ status: 'queued', pages: 1, estimatedCredits: 1.5 });
    const done = await waitForTask(agent, linn.body.task.id, 90_000);
    expect(done).toMatchObject({ status: 'completed', pages: 1, pagesDone: 1, chargedCredits: 1.5, error: null });
    expect(done.words).toBeGreaterThan(600);
    expect(done.meanConfidence).toBeGreaterThan(80);
    const text = (await agent.get(`/api/tasks/${linn.body.task.id}/result`).expect(200)).text;
    const truth = fixture('linn.txt').toString('utf8');
    expect(wordOverlap(truth, text)).toBeGreaterThanOrEqual(0.9);
    expect(await balanceOf(agent)).toEqual({ available: 8.5, held: 0 });
    expect(await booksViolations(ta.t.db)).toEqual([]);

    const multi = await upload(agent, fixture('multipage.pdf'), 'multipage.pdf').expect(202);
    expect(multi.body.task).toMatchObject({ pages: 6, estimatedCredits: 4 });
    const six = await waitForTask(agent, multi.body.task.id, 110_000);
    expect(six).toMatchObject({ status: 'completed', pages: 6, pagesDone: 6, chargedCredits: 4 });
    const stats = (await agent.get(`/api/tasks/${multi.body.task.id}`).expect(200)).body.pageStats as Array<{ source: string }>;
    expect(stats).toHaveLength(6);
    expect(stats.map((p) => p.source)).toContain('text-layer');
    expect(stats.map((p) => p.source)).toContain('ocr');
    expect(await balanceOf(agent)).toEqual({ available: 4.5, held: 0 });
    expect(await booksViolations(ta.t.db)).toEqual([]);

    // Refused at upload, whatever the worker could do: nothing held, nothing charged.
    expectProblem(await upload(agent, fixture('invalid.pdf'), 'invalid.pdf'), 400);
    expectProblem(await upload(agent, fixture('hugemono.pdf'), 'hugemono.pdf'), 400);
    expect(await balanceOf(agent)).toEqual({ available: 4.5, held: 0 });
    expect(await booksViolations(ta.t.db)).toEqual([]);
  }, 240_000);
});
