import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Db } from '../src/db/database.ts';
import { createLedger } from '../src/ledger/ledger-service.ts';
import { closedLoop, interleaved, printFigure, type Figure } from './ledger-bench.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CONNECTIONS = 8;

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as net.AddressInfo;
      s.close(() => resolve(port));
    });
  });
}

/** `npm start` as package.json spells it (so the bench follows the entry point), with `env`. */
/**
 * Starts the app as `npm start` does, in its own process, on the bench's database and a fresh data
 * dir, listening on 127.0.0.1:`port`, in production mode with no in-process worker and sign-ups
 * unthrottled; `extra` adds or overrides environment variables. Returns the process and its data
 * dir (the caller removes it).
 */
export function startApp(url: string, port: number, extra: Record<string, string> = {}) {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-app-'));
  const env: Record<string, string> = {
    NODE_ENV: 'production',
    DATABASE_URL: url,
    DATA_DIR: dataDir,
    HOST: '127.0.0.1',
    PORT: String(port),
    APP_URL: `http://127.0.0.1:${port}`,
    STRIPE_EMULATOR_PORT: '0',
    SESSION_SECRET: crypto.randomBytes(32).toString('hex'),
    LOG_LEVEL: 'error',
    WORKER: 'off',
    SIGNUP_MAX_PER_IP: '100000',
    ...extra,
  };
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const [cmd, ...args] = pkg.scripts.start.split(/\s+/);
  const child = spawn(cmd === 'node' ? process.execPath : cmd!, args, { cwd: ROOT, env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'inherit'] });
  return { child, dataDir };
}

/** Waits until the app started by {@link startApp} answers `/healthz` with 200; throws after `seconds` or when it exits. */
export async function waitForApp(agent: http.Agent, port: number, child: ReturnType<typeof startApp>['child'], seconds: number): Promise<void> {
  for (let tries = 0; ; tries++) {
    const ok = await request(agent, port, 'GET', '/healthz').then((r) => r.status === 200, () => false);
    if (ok) return;
    if (tries > seconds * 10 || child.exitCode !== null) throw new Error(`the app did not start for the bench (port ${port})`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface Reply {
  status: number;
  body: string;
  cookie?: string;
}

export function request(agent: http.Agent, port: number, method: string, url: string, headers: Record<string, string> = {}, body?: string): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: url, agent, headers: body ? { ...headers, 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) } : headers }, (res) => {
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (data += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data, cookie: cookieHeader(res.headers['set-cookie']) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * The HTTP figures (issue 11): an app started as `npm start` does (its own process, on the bench's
 * database, `BENCH_ROUTES=on`, no in-process worker), 8 keep-alive connections in a closed loop,
 * each connection signed in as its own user:
 * - `priced-http@8`: `POST /api/bench/priced` (requireCredits, price known up front: the charge
 *   is made and settled in one commit) vs `GET /healthz`;
 * - `auth-http@8`: `GET /api/bench/noop` (session + user, no work) vs `GET /healthz`.
 * The ledger's books are checked afterwards: every priced request charged exactly once.
 */
export async function benchHttp(db: Db, url: string, options: { seconds: number }): Promise<Figure[]> {
  const ms = options.seconds * 1000;
  const port = await freePort();
  const { child, dataDir } = startApp(url, port, { DB_POOL_MAX: '20', BENCH_ROUTES: 'on' });
  const agent = new http.Agent({ keepAlive: true, maxSockets: CONNECTIONS });
  const figures: Figure[] = [];
  try {
    await waitForApp(agent, port, child, 30);
    const ledger = createLedger(db);
    const cookies: string[] = [];
    const userIds: string[] = [];
    for (let i = 0; i < CONNECTIONS; i++) {
      const body = JSON.stringify({ email: `bench-http-${crypto.randomUUID()}@example.test`, password: 'correct horse battery staple', name: 'Bench' });
      const r = await request(agent, port, 'POST', '/api/auth/signup', {}, body);
      if (r.status !== 201 || !r.cookie) throw new Error(`bench signup → ${r.status} ${r.body}`);
      const userId = (JSON.parse(r.body) as { user: { id: string } }).user.id;
      await ledger.grant({ transferId: `bench-http-${userId}`, userId, millicredits: 1e12, kind: 'bonus', actor: 'bench' });
      cookies.push(r.cookie);
      userIds.push(userId);
    }
    const hit = (expect: number, method: string, path_: string, withCookie: boolean) => async (c: number) => {
      const r = await request(agent, port, method, path_, withCookie ? { Cookie: cookies[c]! } : {});
      if (r.status !== expect) throw new Error(`${method} ${path_} → ${r.status} ${r.body}`);
    };
    const healthz = hit(200, 'GET', '/healthz', false);
    const priced = hit(200, 'POST', '/api/bench/priced', true);
    const noop = hit(204, 'GET', '/api/bench/noop', true);
    // Warm-up: JIT, plans, pools.
    for (const w of [healthz, priced, noop]) await closedLoop(CONNECTIONS, 1000, w);
    const [health, pricedRate, authRate] = await interleaved(CONNECTIONS, ms, [healthz, priced, noop]);
    figures.push(
      { name: `priced-http@${CONNECTIONS}`, rate: pricedRate!, baseline: health!, unit: 'priced requests/s', baselineName: '/healthz' },
      { name: `auth-http@${CONNECTIONS}`, rate: authRate!, baseline: health!, unit: 'authenticated requests/s', baselineName: '/healthz' },
    );
    figures.forEach(printFigure);
    const { rows } = await db.raw(
      `SELECT COUNT(*)::int AS n, COALESCE(SUM(t.amount), 0)::bigint AS spent FROM transfers t JOIN accounts a ON a.id = t.debit_account_id
        WHERE a.user_id = ANY(?) AND t.kind = 'usage'`,
      [userIds],
    );
    const { n, spent } = rows[0] as { n: number; spent: number };
    console.log(`  (${n} priced requests charged ${spent / 1000} credits: one usage transfer of 1 credit each)`);
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
  return figures;
}

/**
 * Every cookie a response sets, as one `Cookie` request header (`a=1; b=2`), or undefined when it
 * sets none. A sign-up sets the session cookie and, since issue 17, the browser's referral cookie
 * too, so taking only the first one sent the wrong cookie.
 */
export function cookieHeader(setCookie: string[] | undefined): string | undefined {
  const pairs = (setCookie ?? []).map((c) => c.split(';')[0]!.trim()).filter(Boolean);
  return pairs.length > 0 ? pairs.join('; ') : undefined;
}
