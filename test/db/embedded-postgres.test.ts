import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processFacts, startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';

const isRoot = process.getuid?.() === 0;
let dataDir: string;
const children: ChildProcess[] = [];

beforeAll(() => {
  // mkdtemp makes a 0700 directory: as root, the postgres user cannot enter it
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-pg-0700-'));
});
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  const pointer = path.join(dataDir, 'pg-location');
  if (fs.existsSync(pointer)) fs.rmSync(fs.readFileSync(pointer, 'utf8').trim(), { recursive: true, force: true });
  fs.rmSync(dataDir, { recursive: true, force: true });
});

async function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

async function query(url: string, sql: string) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(sql)).rows;
  } finally {
    await client.end();
  }
}

/** A process that stays a zombie for 30 s: `sleep 0` exits, and its parent (exec'd into `sleep 30`) never reaps it. */
async function makeZombie(): Promise<number> {
  const parent = spawn('/bin/sh', ['-c', 'sleep 0 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(parent);
  const pid = Number((await new Promise<Buffer>((resolve) => parent.stdout!.once('data', resolve))).toString().trim());
  for (let i = 0; i < 100 && processFacts(pid)?.state !== 'Z'; i++) await new Promise((r) => setTimeout(r, 20));
  expect(processFacts(pid)?.state).toBe('Z');

  return pid;
}

describe('embedded PostgreSQL start-up (issue 9, defects 2 and 10)', () => {
  it.skipIf(!isRoot)('as root, starts on a 0700 DATA_DIR, with its cluster where the postgres user can reach it', async () => {
    expect(fs.statSync(dataDir).mode & 0o777).toBe(0o700);
    const server = await startEmbeddedPostgres({ dataDir, settings: { fsync: 'off' } });
    try {
      expect(server.clusterDir.startsWith(dataDir)).toBe(false);
      expect(fs.readFileSync(path.join(dataDir, 'pg-location'), 'utf8').trim()).toBe(server.clusterDir);
      expect(await query(server.url, 'SELECT current_database() AS db')).toEqual([{ db: 'tally' }]);
    } finally {
      await server.stop();
    }
  });

  it.skipIf(!isRoot)('as root, keeps the cluster under a DATA_DIR the postgres user can enter (0755), even if it cannot write there', async () => {
    const open = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-pg-0755-'));
    fs.chmodSync(open, 0o755);
    try {
      const server = await startEmbeddedPostgres({ dataDir: open, settings: { fsync: 'off' }, ephemeral: true });
      expect(server.clusterDir).toBe(path.join(open, 'pg'));
      expect(fs.existsSync(path.join(open, 'pg-location'))).toBe(false);
      await server.stop();
    } finally {
      fs.rmSync(open, { recursive: true, force: true });
    }
  });

  it('keeps the same port across restarts, so a separate worker finds the server again', async () => {
    const first = await startEmbeddedPostgres({ dataDir, settings: { fsync: 'off' } });
    const port = first.info.port;
    await first.stop();
    const second = await startEmbeddedPostgres({ dataDir, settings: { fsync: 'off' } });
    try {
      expect(second.info.port).toBe(port);
    } finally {
      await second.stop();
    }
  });

  it('a zombie of the previous run does not count as a live owner of the data dir', async () => {
    const zombie = await makeZombie();
    fs.writeFileSync(path.join(dataDir, 'tally.lock'), String(zombie));
    const server = await startEmbeddedPostgres({ dataDir, settings: { fsync: 'off' } });
    await server.stop();
  });

  it('a stale postmaster.pid whose pid now belongs to another process never gets that process signalled', async () => {
    const server = await startEmbeddedPostgres({ dataDir, settings: { fsync: 'off' } });
    const { clusterDir } = server;
    const port = server.info.port;
    await server.stop();
    const bystander = spawn('sleep', ['30'], { stdio: 'ignore' });
    children.push(bystander);
    const now = Math.floor(Date.now() / 1000);
    fs.writeFileSync(path.join(clusterDir, 'postmaster.pid'), `${bystander.pid}\n${clusterDir}\n${now}\n${port}\n/tmp\n127.0.0.1\n  1234   5678\nready\n`);
    const again = await startEmbeddedPostgres({ dataDir, settings: { fsync: 'off' } });
    try {
      expect(await query(again.url, 'SELECT 1 AS one')).toEqual([{ one: 1 }]);
      expect(bystander.exitCode).toBeNull();
      expect(bystander.signalCode).toBeNull();
    } finally {
      await again.stop();
    }
  });

  it('when the app that owns the server is killed with SIGKILL, the server stops too', async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'test/helpers/embedded-pg-child.ts', dataDir], { stdio: ['ignore', 'pipe', 'inherit'] });
    children.push(child);
    const line = await new Promise<string>((resolve, reject) => {
      let out = '';
      child.stdout!.on('data', (c: Buffer) => {
        out += c.toString();
        if (out.includes('\n')) resolve(out.split('\n')[0]!);
      });
      child.once('exit', (code) => reject(new Error(`the child exited (${code})`)));
    });
    const { port } = JSON.parse(line) as { port: number };
    expect(await canConnect(port)).toBe(true);
    child.kill('SIGKILL');
    // The issue allows up to a minute; the watchdog does it at once.
    let up = true;
    for (let i = 0; i < 600 && up; i++) {
      await new Promise((r) => setTimeout(r, 100));
      up = await canConnect(port);
    }
    expect(up).toBe(false);
    // and the next start on the same data dir works
    const next = await startEmbeddedPostgres({ dataDir, settings: { fsync: 'off' } });
    await next.stop();
  });
});
