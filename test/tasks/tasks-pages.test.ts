import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { booksViolations } from '../helpers/factories.ts';
import { balanceOf, buildTasksApp, expectProblem, fixture, signup, stubProcessor, tinyPng, waitForTask, type StubCalls, type TasksTestApp } from './tasks-helpers.ts';

// The /tasks pages without JavaScript: plain form posts (multipart with the CSRF token in the body),
// every POST answered with a 303, the estimate shown before anything is held, one upload per file.
let ta: TasksTestApp;
// What the worker's OCR processor was asked for (the language of each job).
const calls: StubCalls = { count: 0, byMarker: new Map() };
beforeAll(async () => {
  ta = await buildTasksApp({ createProcessor: () => stubProcessor(calls) });
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => ta?.close());

const html = (agent: request.Agent, url: string) => agent.get(url).set('Accept', 'text/html');
const csrfOf = (page: string) => /name="_csrf" value="([^"]+)"/.exec(page)![1]!;

/** The upload form, read from /tasks: its action must carry no token; the token is a body field. */
async function uploadForm(agent: request.Agent) {
  const page = await html(agent, '/tasks').expect(200);
  const form = /<form method="post" action="([^"]+)" enctype="multipart\/form-data"[^>]*>([\s\S]*?)<\/form>/.exec(page.text);
  expect(form?.[1]).toBe('/tasks/uploads');
  const csrf = /name="_csrf" value="([^"]+)"/.exec(form![2]!)?.[1];
  expect(csrf).toBeTruthy();
  return { csrf: csrf!, page };
}

function postUpload(agent: request.Agent, csrf: string | undefined, files: Array<[Buffer, string]>, language?: string) {
  const req = agent.post('/tasks/uploads').set('Accept', 'text/html');
  if (csrf) req.field('_csrf', csrf);
  if (language !== undefined) req.field('language', language);
  for (const [bytes, name] of files) req.attach('file', bytes, name);
  return req;
}

/** Uploads through the form and returns the confirm page's upload ids and HTML. */
async function stage(agent: request.Agent, files: Array<[Buffer, string]>, language?: string) {
  const { csrf } = await uploadForm(agent);
  const res = await postUpload(agent, csrf, files, language).expect(303);
  const location = String(res.headers.location);
  expect(location).toMatch(/^\/tasks\?uploads=[0-9a-f,-]+#confirm$/);
  const page = await html(agent, location.replace(/#.*/, '')).expect(200);
  const ids = [...page.text.matchAll(/name="uploadId" value="([^"]+)"/g)].map((m) => m[1]!);
  return { ids, page: page.text, csrf: csrfOf(page.text) };
}

function confirm(agent: request.Agent, csrf: string, ids: string[]) {
  return agent.post('/tasks/confirm').set('Accept', 'text/html').type('form').send(`_csrf=${encodeURIComponent(csrf)}&${ids.map((id) => `uploadId=${id}`).join('&')}`);
}

describe('/tasks', () => {
  it('sends visitors to the login page', async () => {
    const res = await request(ta.app).get('/tasks').set('Accept', 'text/html').expect(303);
    expect(res.headers.location).toBe('/login?next=%2Ftasks');
  });

  it('shows the upload form with the price, the limit and the balance, and no token in any URL', async () => {
    const { agent } = await signup(ta.app);
    const { page } = await uploadForm(agent);
    expect(page.text).toContain('up to 10 MB each');
    expect(page.text).toMatch(/Costs 1 credit per document plus 0.5 per page/);
    expect(page.text).toMatch(/Your balance: <strong><span data-balance>10<\/span> credits/);
    expect(page.text).toContain('<script src="/static/tasks.js" defer></script>');
    expect(page.text).toContain('No tasks yet');
    expect(page.text).toMatch(/<input type="file" id="file" name="file" multiple/);
    expect(page.text).not.toContain('_csrf=');
  });

  it('estimates first (nothing held), then confirms the kept upload into a task: the file is sent once', async () => {
    const { agent } = await signup(ta.app);
    const { ids, page, csrf } = await stage(agent, [[fixture('multipage.pdf'), 'scan.pdf']]);
    expect(ids).toHaveLength(1);
    expect(page).toContain('scan.pdf');
    expect(page).toMatch(/data-estimate-credits>4</);
    expect(page).toContain('Confirm: run OCR for 4 credits');
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });

    const res = await confirm(agent, csrf, ids).expect(303);
    expect(res.headers.location).toBe(`/tasks/${ids[0]}`);
    // The same confirmation again (double click, back and resubmit) is the same task, held once.
    expect((await confirm(agent, csrf, ids).expect(303)).headers.location).toBe(`/tasks/${ids[0]}`);
    await waitForTask(agent, ids[0]!);
    const show = await html(agent, `/tasks/${ids[0]}`).expect(200);
    expect(show.text).toContain('scan.pdf');
    expect(show.text).toMatch(/data-testid="charged">4</);
    expect(show.text).toContain('stub text page 6');
    expect(show.text).toContain('data-copy="#ocr-text"');
    expect(await balanceOf(agent)).toEqual({ available: 6, held: 0 });
  });

  it('takes several files at once, shows each estimate and the total, and one confirm queues them all', async () => {
    const { agent } = await signup(ta.app);
    const { ids, page, csrf } = await stage(agent, [
      [await tinyPng('multi-a'), 'a.png'],
      [fixture('multipage.pdf'), 'b.pdf'],
    ]);
    expect(ids).toHaveLength(2);
    expect(page).toMatch(/a\.png<\/td><td data-upload-language>Detected for each page<\/td><td class="num">1<\/td><td class="num">1\.5 credits/);
    expect(page).toMatch(/b\.pdf<\/td><td data-upload-language>Detected for each page<\/td><td class="num">6<\/td><td class="num">4 credits/);
    expect(page).toContain('Confirm: run OCR for 5.5 credits');
    const res = await confirm(agent, csrf, ids).expect(303);
    expect(res.headers.location).toBe('/tasks#tasks');
    for (const id of ids) await waitForTask(agent, id);
    const list = await html(agent, '/tasks').expect(200);
    expect(list.text).toContain('2 documents are queued.');
    expect(await balanceOf(agent)).toEqual({ available: 4.5, held: 0 });
  });

  it('offers the languages and the price of each kind of page on the upload form', async () => {
    const { agent } = await signup(ta.app);
    const { page } = await uploadForm(agent);
    expect(page.text).toMatch(/<select id="language" name="language"[^>]*>\s*<option value="">Detect for each page<\/option>/);
    for (const [code, name] of [['eng', 'English'], ['fra', 'French'], ['deu', 'German'], ['spa', 'Spanish']]) {
      expect(page.text).toContain(`<option value="${code}">${name}</option>`);
    }
    // the language comes before the files (with script, choosing files uploads them at once)
    expect(page.text.indexOf('name="language"')).toBeLessThan(page.text.indexOf('name="file"'));
    expect(page.text).toMatch(/plus 0\.5 per page read by OCR, [\d.]+ per page that already has text; blank pages are free/);
  });

  it('keeps the chosen language with the upload and reads the confirmed task in it (language=fra)', async () => {
    const { agent } = await signup(ta.app);
    const { ids, page, csrf } = await stage(agent, [[await tinyPng('page-lang-fra'), 'lettre.png']], 'fra');
    expect(ids).toHaveLength(1);
    expect(page).toMatch(/lettre\.png<\/td><td data-upload-language>French<\/td>/);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
    const before = calls.languages?.length ?? 0;
    expect((await confirm(agent, csrf, ids).expect(303)).headers.location).toBe(`/tasks/${ids[0]}`);
    const task = await waitForTask(agent, ids[0]!);
    expect(task).toMatchObject({ status: 'completed', language: 'fra', fileName: 'lettre.png' });
    expect(calls.languages!.slice(before)).toEqual(['fra']);
    expect(await ta.t.db('tasks').where({ id: ids[0] }).first('language')).toEqual({ language: 'fra' });
    expect((await html(agent, `/tasks/${ids[0]}`).expect(200)).text).toContain('French');
  });

  it('refuses an unknown language from the form before keeping anything, and says so after the redirect', async () => {
    const { agent, userId } = await signup(ta.app);
    const { csrf } = await uploadForm(agent);
    const res = await postUpload(agent, csrf, [[await tinyPng('page-lang-bad'), 'a.png']], 'klingon').expect(303);
    expect(res.headers.location).toBe('/tasks#upload');
    expect((await html(agent, '/tasks').expect(200)).text).toContain('Choose a language from the list, or &#34;Detect for each page&#34;.');
    expect(await ta.t.db('task_uploads').where({ user_id: userId }).count({ n: '*' })).toEqual([{ n: 0 }]);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });

  it('refuses an upload without the CSRF token in the body, and keeps nothing', async () => {
    const { agent, userId } = await signup(ta.app);
    await postUpload(agent, undefined, [[await tinyPng(), 'a.png']]).expect(403);
    expect(await ta.t.db('task_uploads').where({ user_id: userId }).count({ n: '*' })).toEqual([{ n: 0 }]);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });

  it('says why a document was refused after a redirect, and charges nothing', async () => {
    const { agent } = await signup(ta.app);
    const { csrf } = await uploadForm(agent);
    const res = await postUpload(agent, csrf, [[fixture('invalid.pdf'), 'invalid.pdf']]).expect(303);
    expect(res.headers.location).toBe('/tasks#upload');
    expect((await html(agent, '/tasks').expect(200)).text).toContain('The file is not a readable PDF.');
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });

  it('with too few credits, the confirm step says so and links to buying more; the upload waits', async () => {
    const { agent, userId } = await signup(ta.app);
    await ta.deps.ledger.debit({ transferId: `page-spend:${userId}`, userId, millicredits: 8000, kind: 'adjustment', actor: 'system', reason: 'test' });
    const { ids, page, csrf } = await stage(agent, [[fixture('multipage.pdf'), 'multipage.pdf']]);
    expect(page).toContain('Not enough credits for this document. <a href="/pricing">Buy more credits</a>');
    expect(page).toMatch(/<button type="submit" data-confirm-submit disabled>Not enough credits<\/button>/);
    // Posted anyway (an old tab): a 303 back to the confirm step with the reason and the link.
    const res = await confirm(agent, csrf, ids).expect(303);
    expect(res.headers.location).toBe(`/tasks?uploads=${ids[0]}#confirm`);
    const back = await html(agent, `/tasks?uploads=${ids[0]}`).expect(200);
    expect(back.text).toContain('Not enough credits: this document needs 4 credits and you have 2. <a href="/pricing">Buy more credits</a>');
    expect(await balanceOf(agent)).toEqual({ available: 2, held: 0 });
  });

  it('the JSON API keeps an upload and confirms it once: POST /api/tasks/uploads, then /confirm', async () => {
    const { agent } = await signup(ta.app);
    const staged = await agent.post('/api/tasks/uploads').attach('file', await tinyPng('api-stage'), 'api.png').expect(201);
    expect(staged.body.upload).toMatchObject({ fileName: 'api.png', pages: 1, credits: 1.5 });
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
    const first = await agent.post(`/api/tasks/uploads/${staged.body.upload.id}/confirm`).expect(202);
    expect(first.body.task).toMatchObject({ id: staged.body.upload.id, fileName: 'api.png', estimatedCredits: 1.5 });
    const again = await agent.post(`/api/tasks/uploads/${staged.body.upload.id}/confirm`).expect(202);
    expect(again.headers['idempotent-replayed']).toBe('true');
    await waitForTask(agent, first.body.task.id);
    expect(await balanceOf(agent)).toEqual({ available: 8.5, held: 0 });
    const other = await signup(ta.app);
    const theirs = await other.agent.post('/api/tasks/uploads').attach('file', await tinyPng('api-theirs'), 't.png').expect(201);
    await agent.post(`/api/tasks/uploads/${theirs.body.upload.id}/confirm`).expect(404);
  });

  it('the JSON API keeps the language with the upload (fra) and confirms it into a task read in French', async () => {
    const { agent } = await signup(ta.app);
    const staged = await agent.post('/api/tasks/uploads').field('language', 'fra').attach('file', await tinyPng('api-lang-fra'), 'fr.png').expect(201);
    expect(staged.body.upload).toMatchObject({ fileName: 'fr.png', language: 'fra', credits: 1.5 });
    const before = calls.languages?.length ?? 0;
    const confirmed = await agent.post(`/api/tasks/uploads/${staged.body.upload.id}/confirm`).expect(202);
    expect(confirmed.body.task).toMatchObject({ id: staged.body.upload.id, language: 'fra' });
    expect(await waitForTask(agent, confirmed.body.task.id)).toMatchObject({ status: 'completed', language: 'fra' });
    expect(calls.languages!.slice(before)).toEqual(['fra']);
    // empty: detected per page
    const auto = await agent.post('/api/tasks/uploads').field('language', '').attach('file', await tinyPng('api-lang-auto'), 'auto.png').expect(201);
    expect(auto.body.upload.language).toBeNull();
  });

  it('the JSON API refuses an unknown language with a 400 naming the field, and keeps nothing', async () => {
    const { agent, userId } = await signup(ta.app);
    const files = ta.uploadsCount();
    const res = await agent.post('/api/tasks/uploads').field('language', 'klingon').attach('file', await tinyPng('api-lang-bad'), 'x.png');
    const problem = expectProblem(res, 400);
    expect(problem.errors).toEqual([{ field: 'body.language', message: expect.stringContaining('eng, fra, deu, spa') }]);
    expect(await ta.t.db('task_uploads').where({ user_id: userId }).count({ n: '*' })).toEqual([{ n: 0 }]);
    expect(ta.uploadsCount()).toBe(files);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });

  it('deletes a task from its page', async () => {
    const { agent } = await signup(ta.app);
    const { ids, csrf: c } = await stage(agent, [[await tinyPng('page-delete'), 'gone.png']]);
    const id = (await confirm(agent, c, ids).expect(303)).headers.location?.split('/').pop() ?? '';
    await waitForTask(agent, id);
    const show = await html(agent, `/tasks/${id}`).expect(200);
    const csrf = /name="_csrf" value="([^"]+)"/.exec(show.text)![1]!;
    const res = await agent.post(`/tasks/${id}/delete`).set('Accept', 'text/html').type('form').send({ _csrf: csrf }).expect(303);
    expect(res.headers.location).toBe('/tasks');
    expect((await html(agent, '/tasks').expect(200)).text).toContain('Deleted gone.png and its files.');
    await html(agent, `/tasks/${id}`).expect(404);
  });

  it("is a 404 for someone else's task", async () => {
    const owner = await signup(ta.app);
    const other = await signup(ta.app);
    const { ids, csrf } = await stage(owner.agent, [[await tinyPng('page-own'), 'own.png']]);
    const id = (await confirm(owner.agent, csrf, ids).expect(303)).headers.location?.split('/').pop() ?? '';
    await html(other.agent, `/tasks/${id}`).expect(404);
    await waitForTask(owner.agent, id);
  });
});
