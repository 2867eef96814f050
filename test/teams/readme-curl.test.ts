import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { booksViolations, fundAccount } from '../helpers/factories.ts';
import { buildTasksApp, fixture, signup, type TasksTestApp } from '../tasks/tasks-helpers.ts';

const run = promisify(execFile);
let ta: TasksTestApp;
let server: http.Server;
let baseUrl: string;

beforeAll(async () => {
  ta = await buildTasksApp();
  server = http.createServer(ta.app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server?.closeAllConnections();
  await new Promise((r) => server?.close(r));
  await ta?.close();
});

/** The README's key example, as written: the `sh` block after "Upload a document and read its text with a key". */
function readmeExample(): string {
  const readme = fs.readFileSync(path.join(process.cwd(), 'README.md'), 'utf8');
  const from = readme.indexOf('Upload a document and read its text with a key');
  const block = /```sh\n([\s\S]*?)```/.exec(readme.slice(from));
  if (from < 0 || !block) throw new Error('README: the curl example with a key is missing');
  return block[1]!;
}

describe('the README curl example with an API key', () => {
  it("runs as written with a team key: the job is charged to the team's pool and the text comes back", async () => {
    const member = await signup(ta.app);
    const team = (await member.agent.post('/api/teams').send({ name: 'Scripts' }).expect(201)).body.team as { id: string };
    await fundAccount(ta.deps.ledger, team.id, 20_000);
    const { secret } = (await member.agent.post('/api/keys').send({ name: 'curl', teamId: team.id, scopes: ['tasks:read', 'tasks:write'] }).expect(201)).body;
    const dir = fs.mkdtempSync(path.join(ta.dataDir, 'curl-'));
    fs.writeFileSync(path.join(dir, 'scan.pdf'), fixture('multipage.pdf'));

    const script = readmeExample().replace('http://localhost:3000', baseUrl).replace('tly_live_…', secret);
    expect(script).not.toContain('localhost:3000');
    const { stdout } = await run('bash', ['-eo', 'pipefail', '-c', script], { cwd: dir, timeout: 60_000 });

    expect(stdout).toContain('stub text page 1');
    const task = await ta.t.db('tasks').where({ user_id: member.userId }).first();
    expect(task).toMatchObject({ status: 'completed', file_name: 'scan.pdf' });
    const charged = Number(task.charged_millicredits);
    expect(charged).toBeGreaterThan(0);
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ available: 20_000 - charged, held: 0 });
    expect((await member.agent.get('/api/credits/balance').expect(200)).body).toMatchObject({ available: 10, held: 0 });
    expect(await ta.t.db('spend_attributions').where({ hold_id: task.hold_id }).first()).toMatchObject({ team_id: team.id, user_id: member.userId });
    expect(await booksViolations(ta.t.db)).toEqual([]);
  });
});
