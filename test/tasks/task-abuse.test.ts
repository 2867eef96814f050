import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTasksApp, signup, tinyPng, upload, type TasksTestApp } from './tasks-helpers.ts';

// Issue 9, defect 11: abuse vectors around uploads and progress streams.
let ta: TasksTestApp;
let server: http.Server;
let port: number;
const open: http.ClientRequest[] = [];
beforeAll(async () => {
  // WORKER=off: tasks stay queued, so their progress streams stay open
  ta = await buildTasksApp({ env: { WORKER: 'off', TASK_EVENTS_MAX_STREAMS: '25', SIGNUP_MAX_PER_IP: '1000' } });
  server = http.createServer(ta.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  for (const req of open) req.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await ta.close();
});

/** Opens `GET /api/tasks/:id/events` and resolves with its status once the headers arrive; the stream stays open. */
function openStream(cookie: string, taskId: string): Promise<{ status: number; close(): void }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: `/api/tasks/${taskId}/events`, headers: { Cookie: cookie } }, (res) => {
      res.on('data', () => undefined);
      resolve({ status: res.statusCode!, close: () => req.destroy() });
    });
    req.on('error', (err) => ((err as NodeJS.ErrnoException).code === 'ECONNRESET' ? undefined : reject(err)));
    open.push(req);
  });
}

async function userWithTasks(n: number) {
  const { agent } = await signup(ta.app);
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await upload(agent, await tinyPng(`t${i}`), `t${i}.png`).expect(202)).body.task.id);
  const cookie = (await agent.get('/api/auth/me')).request.cookies as unknown as string;
  return { agent, ids, cookie };
}

describe('uploaded file names', () => {
  it('lose their bidirectional-text controls: invoice<RLO>gnp.exe cannot pass for invoiceexe.png', async () => {
    const { agent } = await signup(ta.app);
    const res = await upload(agent, await tinyPng(), 'invoice\u202Egnp.exe').expect(202);
    expect(res.body.task.fileName).toBe('invoicegnp.exe');
    const controls = await upload(agent, await tinyPng('b'), '\u2066a\u2069\u200e\u200fb\u061c\u202a\u202b\u202c\u202dc.png').expect(202);
    expect(controls.body.task.fileName).toBe('abc.png');
    const download = await agent.get(`/api/tasks/${res.body.task.id}/download`).expect(200);
    expect(download.headers['content-disposition']).not.toMatch(/%E2%80%AE/i);
  });
});

describe('task progress streams', () => {
  it('are capped per user: beyond the cap a 429, and closing one frees a slot', async () => {
    const { ids, cookie } = await userWithTasks(1);
    const streams = [];
    for (let i = 0; i < 25; i++) streams.push(await openStream(cookie, ids[0]!));
    expect(streams.map((s) => s.status)).toEqual(Array(25).fill(200));
    expect((await openStream(cookie, ids[0]!)).status).toBe(429);
    // another user is not affected
    const other = await userWithTasks(1);
    expect((await openStream(other.cookie, other.ids[0]!)).status).toBe(200);
    streams[0]!.close();
    let status = 429;
    for (let i = 0; i < 50 && status === 429; i++) {
      await new Promise((r) => setTimeout(r, 20));
      const s = await openStream(cookie, ids[0]!);
      status = s.status;
    }
    expect(status).toBe(200);
    for (const s of streams) s.close();
  });

  it('share one poller: 20 open streams do not read the database once per stream', async () => {
    const users = await Promise.all([1, 2, 3, 4].map(() => userWithTasks(5))); // 5 tasks fit in the sign-up credits
    let taskReads = 0;
    const count = (q: { sql: string }) => {
      if (/from "tasks"/i.test(q.sql) && !/for update/i.test(q.sql)) taskReads++;
    };
    const streams = await Promise.all(users.flatMap((u) => u.ids.map((id) => openStream(u.cookie, id))));
    expect(streams).toHaveLength(20);
    expect(streams.every((s) => s.status === 200)).toBe(true);
    ta.t.db.on('query', count);
    await new Promise((r) => setTimeout(r, 2000)); // four poll periods of 500 ms
    ta.t.db.off('query', count);
    for (const s of streams) s.close();
    // one stream each polling every 500 ms would be ~80 reads; one poller, ~4
    expect(taskReads).toBeLessThanOrEqual(8);
  });
});
