import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { booksViolations } from '../helpers/factories.ts';
import { balanceOf, buildTasksApp, expectProblem, signup, tinyPng, type TasksTestApp } from './tasks-helpers.ts';

// Multipart bodies no browser sends, written by hand: each is a 400 naming the field, with
// nothing held or stored, never a 500.
let ta: TasksTestApp;
beforeAll(async () => {
  ta = await buildTasksApp({ worker: false });
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => ta?.close());

const BOUNDARY = 'tallyBoundary7MA4YWxkTrZu0gW';

/** A multipart body with one file part whose Content-Disposition parameters are `disposition`. */
function multipart(disposition: string, bytes: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`--${BOUNDARY}\r\nContent-Disposition: form-data; name="file"; ${disposition}\r\nContent-Type: image/png\r\n\r\n`, 'latin1'),
    bytes,
    Buffer.from(`\r\n--${BOUNDARY}--\r\n`, 'latin1'),
  ]);
}

async function post(path: string, agent: Awaited<ReturnType<typeof signup>>['agent'], body: Buffer) {
  return agent.post(path).set('Content-Type', `multipart/form-data; boundary=${BOUNDARY}`).send(body);
}

describe('malformed multipart uploads', () => {
  const cases: Array<[string, string]> = [
    ['a CR/LF in the file name', 'filename="evil\r\nX-Injected: 1.png"'],
    ['a NUL in the file name', 'filename="nul\u0000name.png"'],
    ['a percent-encoded CR/LF/NUL in filename*', "filename*=UTF-8''a%0D%0Ab%00c.png"],
    ['a 120 KB filename* parameter', `filename*=UTF-8''${'%41'.repeat(40_000)}.png`],
  ];
  for (const [what, disposition] of cases) {
    for (const path of ['/api/tasks', '/api/credits/estimate']) {
      it(`${path}: ${what} → 400 naming the file field, nothing held or stored`, async () => {
        const { agent, userId } = await signup(ta.app);
        const files = ta.uploadsCount();
        const res = await post(path, agent, multipart(disposition, await tinyPng()));
        const body = expectProblem(res, 400);
        expect(body.errors).toEqual([expect.objectContaining({ field: expect.stringMatching(/file/) })]);
        expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
        expect(ta.uploadsCount()).toBe(files);
        expect(await ta.t.db('tasks').where({ user_id: userId })).toEqual([]);
      });
    }
  }
});
