import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { booksViolations } from '../helpers/factories.ts';
import { balanceOf, buildTasksApp, fixture, signup, tinyPng, waitForTask, type TasksTestApp } from './tasks-helpers.ts';

// The /tasks pages without JavaScript: a plain multipart form post, redirects, server-rendered state.
let ta: TasksTestApp;
beforeAll(async () => {
  ta = await buildTasksApp();
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => ta?.close());

const html = (agent: request.Agent, url: string) => agent.get(url).set('Accept', 'text/html');

/** The upload form's action (with its CSRF token) and idempotency key, read from /tasks. */
async function uploadForm(agent: request.Agent) {
  const page = await html(agent, '/tasks').expect(200);
  const action = /<form method="post" action="([^"]+)" enctype="multipart\/form-data"/.exec(page.text)?.[1];
  const key = /name="idempotencyKey" value="([^"]+)"/.exec(page.text)?.[1];
  expect(action).toMatch(/^\/tasks\?_csrf=/);
  return { action: action!.replace(/&amp;/g, '&'), key: key!, page };
}

function postForm(agent: request.Agent, action: string, bytes: Buffer, fileName: string, key?: string) {
  const req = agent.post(action).set('Accept', 'text/html');
  if (key) req.field('idempotencyKey', key);
  return req.attach('file', bytes, fileName);
}

describe('/tasks', () => {
  it('sends visitors to the login page', async () => {
    const res = await request(ta.app).get('/tasks').set('Accept', 'text/html').expect(303);
    expect(res.headers.location).toBe('/login?next=%2Ftasks');
  });

  it('shows the upload form with the price, the limit and the balance', async () => {
    const { agent } = await signup(ta.app);
    const { page } = await uploadForm(agent);
    expect(page.text).toContain('up to 10 MB');
    expect(page.text).toMatch(/Costs 1 credit per\s+document plus 0.5 per page/);
    expect(page.text).toMatch(/Your balance: <strong><span data-balance>10<\/span> credits/);
    expect(page.text).toContain('<script src="/static/tasks.js" defer></script>');
    expect(page.text).toContain('No tasks yet');
  });

  it('creates the task from a plain form post and redirects to it; the page shows the text and the charge', async () => {
    const { agent } = await signup(ta.app);
    const { action, key } = await uploadForm(agent);
    const res = await postForm(agent, action, fixture('multipage.pdf'), 'scan.pdf', key).expect(303);
    const id = /^\/tasks\/([0-9a-f-]{36})$/.exec(String(res.headers.location))?.[1] ?? '';
    expect(id).not.toBe('');
    // The same form submitted twice (double click, reload) is the same task.
    expect((await postForm(agent, action, fixture('multipage.pdf'), 'scan.pdf', key).expect(303)).headers.location).toBe(res.headers.location);
    await waitForTask(agent, id);
    const show = await html(agent, `/tasks/${id}`).expect(200);
    expect(show.text).toContain('scan.pdf');
    expect(show.text).toMatch(/data-testid="charged">4</);
    expect(show.text).toContain('stub text page 6');
    expect(show.text).toContain(`/api/tasks/${id}/download`);
    expect(await balanceOf(agent)).toEqual({ available: 6, held: 0 });
    const list = await html(agent, '/tasks').expect(200);
    expect(list.text).toContain(`data-task-id="${id}" data-status="completed"`);
  });

  it('refuses a form post without the CSRF token', async () => {
    const { agent } = await signup(ta.app);
    await postForm(agent, '/tasks', await tinyPng(), 'a.png').expect(403);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });

  it('shows why a document was refused, and charges nothing', async () => {
    const { agent } = await signup(ta.app);
    const { action } = await uploadForm(agent);
    const res = await postForm(agent, action, fixture('invalid.pdf'), 'invalid.pdf').expect(400);
    expect(res.text).toContain('The file is not a readable PDF.');
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
  });

  it('on 402 says there are not enough credits and links to buying more', async () => {
    const { agent, userId } = await signup(ta.app);
    await ta.deps.ledger.debit({ transferId: `page-spend:${userId}`, userId, millicredits: 8000, kind: 'adjustment', actor: 'system', reason: 'test' });
    const { action } = await uploadForm(agent);
    const res = await postForm(agent, action, fixture('multipage.pdf'), 'multipage.pdf').expect(402);
    expect(res.text).toContain('Not enough credits: this document needs 4 credits and you have 2.');
    expect(res.text).toContain('<a href="/pricing">Buy more credits</a>');
    expect(await balanceOf(agent)).toEqual({ available: 2, held: 0 });
  });

  it('deletes a task from its page', async () => {
    const { agent } = await signup(ta.app);
    const { action } = await uploadForm(agent);
    const id = (await postForm(agent, action, await tinyPng('page-delete'), 'gone.png').expect(303)).headers.location?.split('/').pop() ?? '';
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
    const { action } = await uploadForm(owner.agent);
    const id = (await postForm(owner.agent, action, await tinyPng('page-own'), 'own.png').expect(303)).headers.location?.split('/').pop() ?? '';
    await html(other.agent, `/tasks/${id}`).expect(404);
    await waitForTask(owner.agent, id);
  });
});
