import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { booksViolations } from '../helpers/factories.ts';
import { wordOverlap, wordRecall } from '../helpers/text-overlap.ts';
import request from 'supertest';
import { extractText } from 'unpdf';
import { balanceOf, buildTasksApp, expectProblem, fixture, signup, upload, waitForTask, type TasksTestApp } from './tasks-helpers.ts';

// "Done when", as a new user would try it: sign up (10 credits), upload through the API, the
// worker OCRs with tesseract.js for real, the ledger settles. The one test file that runs real OCR
// through the pipeline (about 1–2 min on 2 cores: multipage.pdf's second page alone is a
// 9000 × 9000 scan).
/** A supertest parser that keeps the body as bytes. */
function binary(res: request.Response, done: (err: Error | null, body: unknown) => void): void {
  const chunks: Buffer[] = [];
  (res as unknown as NodeJS.ReadableStream).on('data', (chunk: Buffer) => chunks.push(chunk));
  (res as unknown as NodeJS.ReadableStream).on('end', () => done(null, Buffer.concat(chunks)));
}

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

    // 6 pages: the estimate holds 6 OCR pages; page 4 turns out to carry an earlier OCR's text
    // layer (0.1 credit), the five others are scans read by OCR (0.5 each): 1 + 2.5 + 0.1
    const multi = await upload(agent, fixture('multipage.pdf'), 'multipage.pdf').expect(202);
    expect(multi.body.task).toMatchObject({ pages: 6, estimatedCredits: 4 });
    const six = await waitForTask(agent, multi.body.task.id, 300_000);
    expect(six).toMatchObject({ status: 'completed', pages: 6, pagesDone: 6, chargedCredits: 3.6 });
    const stats = (await agent.get(`/api/tasks/${multi.body.task.id}`).expect(200)).body.pageStats as Array<{ source: string; chargedCredits: number }>;
    expect(stats.map((p) => p.source)).toEqual(['ocr', 'ocr', 'ocr', 'text-layer', 'ocr', 'ocr']);
    expect(stats.map((p) => p.chargedCredits)).toEqual([0.5, 0.5, 0.5, 0.1, 0.5, 0.5]);
    expect(await balanceOf(agent)).toEqual({ available: 4.9, held: 0 });
    expect(await booksViolations(ta.t.db)).toEqual([]);

    // the searchable PDF: the six original pages, with the text a viewer can select and search
    const pdf = await agent.get(`/api/tasks/${multi.body.task.id}/result?format=pdf`).buffer(true).parse(binary).expect(200);
    expect(pdf.headers['content-type']).toBe('application/pdf');
    const { totalPages, text: layers } = await extractText(new Uint8Array(pdf.body as Buffer), { mergePages: false });
    expect(totalPages).toBe(6);
    const pageTexts = (await agent.get(`/api/tasks/${multi.body.task.id}/result?format=json`).expect(200)).body.pages as Array<{ text: string; words: number }>;
    // pages of prose (1, 5, 6) whole; the charts' stray symbols tokenize differently in the PDF
    for (const index of [0, 4, 5]) {
      expect(pageTexts[index]!.words).toBeGreaterThan(100);
      expect(wordRecall(pageTexts[index]!.text, layers[index]!), `page ${index + 1}`).toBeGreaterThanOrEqual(0.95);
    }

    // Refused at upload, whatever the worker could do: nothing held, nothing charged.
    expectProblem(await upload(agent, fixture('invalid.pdf'), 'invalid.pdf'), 400);
    expectProblem(await upload(agent, fixture('hugemono.pdf'), 'hugemono.pdf'), 400);
    expect(await balanceOf(agent)).toEqual({ available: 4.9, held: 0 });
    expect(await booksViolations(ta.t.db)).toEqual([]);
  }, 420_000);
});
