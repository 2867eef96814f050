import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import { findFreePort } from '../../src/db/embedded-postgres.ts';

/**
 * Runs Tally as an operator would: `npm start` and `npm run worker` as child processes (the
 * commands taken from package.json's scripts, so they follow the entry points wherever they live),
 * on one data dir that survives restarts and kills. Logs go to test-results/reliability-*.log.
 */

const ROOT = process.cwd();
const scripts = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;

/** `node --import tsx src/…/x.ts` → the node arguments of an npm script. */
function nodeArgs(script: string): string[] {
  const parts = scripts[script]!.split(/\s+/);
  if (parts[0] !== 'node') throw new Error(`npm script ${script} does not start with node: ${scripts[script]}`);
  return parts.slice(1);
}

export const ADMIN = { email: 'admin@reliability.test', password: 'reliability-admin-password-1' };

export interface Site {
  dataDir: string;
  port: number;
  emulatorPort: number;
  baseUrl: string;
  emulatorUrl: string;
  env: Record<string, string>;
  logFile: string;
}

/**
 * A data dir made with mktemp (0700: as root, the postgres user cannot enter it, which start-up
 * must handle) and free ports for the app and the Stripe emulator.
 */
export async function createSite(name: string, env: Record<string, string> = {}): Promise<Site> {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), `tally-${name}-`));
  const port = await findFreePort();
  const emulatorPort = await findFreePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const logFile = path.join(ROOT, 'test-results', `reliability-${name}.log`);
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  fs.writeFileSync(logFile, '');
  return {
    dataDir,
    port,
    emulatorPort,
    baseUrl,
    emulatorUrl: `http://127.0.0.1:${emulatorPort}`,
    logFile,
    env: {
      NODE_ENV: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      APP_URL: baseUrl,
      DATA_DIR: dataDir,
      STRIPE_EMULATOR_PORT: String(emulatorPort),
      STRIPE_SECRET_KEY: '',
      DATABASE_URL: '',
      ADMIN_EMAIL: ADMIN.email,
      ADMIN_PASSWORD: ADMIN.password,
      SIGNUP_MAX_PER_IP: '100000',
      LOG_LEVEL: 'info',
      ...env,
    },
  };
}

/** Removes the data dir and, for root, the cluster kept outside it (see pg-location). */
export function removeSite(site: Site): void {
  const pointer = path.join(site.dataDir, 'pg-location');
  if (fs.existsSync(pointer)) fs.rmSync(fs.readFileSync(pointer, 'utf8').trim(), { recursive: true, force: true });
  fs.rmSync(site.dataDir, { recursive: true, force: true });
}

export interface Proc {
  child: ChildProcess;
  exited: Promise<number | null>;
  /** Exit code, or null while running / when killed by a signal. */
  readonly exitCode: number | null;
  readonly running: boolean;
  kill(signal: NodeJS.Signals): Promise<void>;
}

function spawnScript(site: Site, script: string, env: Record<string, string>, label: string): Proc {
  const log = fs.openSync(site.logFile, 'a');
  fs.writeSync(log, `\n===== ${new Date().toISOString()} start ${label} =====\n`);
  const child = spawn(process.execPath, nodeArgs(script), { cwd: ROOT, env: { ...process.env, ...site.env, ...env }, stdio: ['ignore', log, log] });
  fs.closeSync(log);
  // If this test process ends without its afterAll (a crashed fork), take the child with it.
  const orphanGuard = () => child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  child.once('exit', () => process.removeListener('exit', orphanGuard));
  let done = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      done = true;
      resolve(code);
    }),
  );
  return {
    child,
    exited,
    get exitCode() {
      return child.exitCode;
    },
    get running() {
      return !done;
    },
    async kill(signal) {
      if (done) return;
      child.kill(signal);
      await exited;
    },
  };
}

/** Starts `npm start` on the site and waits for /readyz (up to 3 minutes). */
export async function startApp(site: Site, env: Record<string, string> = {}): Promise<Proc> {
  const proc = spawnScript(site, 'start', env, 'app');
  const deadline = Date.now() + 180_000;
  for (;;) {
    if (!proc.running) throw new Error(`the app exited (${proc.exitCode}); see ${site.logFile}`);
    try {
      const res = await fetch(`${site.baseUrl}/readyz`);
      if (res.ok) return proc;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) {
      await proc.kill('SIGKILL');
      throw new Error(`the app did not become ready; see ${site.logFile}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Starts `npm run worker` on the site (attached to the app's embedded server). */
export function startWorker(site: Site, env: Record<string, string> = {}): Proc {
  return spawnScript(site, 'worker', env, 'worker');
}

/** Waits until the site's log has a line from process `pid` containing `text` (e.g. a worker's "Tally worker running"). */
export async function waitForLog(site: Site, pid: number | undefined, text: string, timeoutMs = 120_000): Promise<boolean> {
  return eventually(async () => fs.readFileSync(site.logFile, 'utf8').split('\n').some((l) => l.includes(`"pid":${pid},`) && l.includes(text)), timeoutMs);
}

/** Runs `npm run ledger:check` against the running app's database; resolves with its exit code and output. */
export async function ledgerCheck(site: Site): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, nodeArgs('ledger:check'), { cwd: ROOT, env: { ...process.env, ...site.env, LOG_LEVEL: 'warn' } });
  let output = '';
  child.stdout.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr.on('data', (c: Buffer) => (output += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { code, output };
}

/** A minimal cookie-keeping JSON client for one signed-in user. */
export class Client {
  cookie = '';
  constructor(readonly baseUrl: string) {}

  async request(method: string, url: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; body: any; headers: Headers }> {
    const init: RequestInit = { method, headers: { Accept: 'application/json', ...headers, ...(this.cookie ? { Cookie: this.cookie } : {}) }, redirect: 'manual' };
    if (body instanceof FormData) init.body = body;
    else if (body !== undefined) {
      init.body = JSON.stringify(body);
      (init.headers as Record<string, string>)['Content-Type'] = 'application/json';
    }
    const res = await fetch(`${this.baseUrl}${url}`, init);
    const setCookie = res.headers.getSetCookie().find((c) => c.startsWith('tally.sid='));
    if (setCookie) this.cookie = setCookie.split(';')[0]!;
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      /* not JSON */
    }
    return { status: res.status, body: parsed, headers: res.headers };
  }

  async login(email: string, password: string): Promise<void> {
    const res = await this.request('POST', '/api/auth/login', { email, password });
    if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  }

  async signup(email: string, password = 'reliability-user-password-1'): Promise<string> {
    const res = await this.request('POST', '/api/auth/signup', { email, password, name: 'Reliability' });
    if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.user.id as string;
  }

  upload(bytes: Buffer, name: string, idempotencyKey?: string) {
    const form = new FormData();
    form.append('file', new Blob([new Uint8Array(bytes)], { type: name.endsWith('.pdf') ? 'application/pdf' : 'image/png' }), name);
    return this.request('POST', '/api/tasks', form, idempotencyKey ? { 'Idempotency-Key': idempotencyKey } : {});
  }
}

/** A small one-page PNG with a few dark strokes; `seed` makes each one different bytes. */
export async function smallPng(seed: number): Promise<Buffer> {
  const canvas = createCanvas(120, 40);
  const ctx = canvas.getContext('2d');
  ctx.fillStyle = '#fff';
  ctx.fillRect(0, 0, 120, 40);
  ctx.fillStyle = '#000';
  ctx.font = '20px sans-serif';
  ctx.fillText(`T${seed % 1000}`, 10, 28);
  return canvas.encode('png');
}

/** Polls `check` every 250 ms until it returns true or `timeoutMs` passes; returns the last result. */
export async function eventually(check: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return true;
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** The app's database, through the embedded server's info file (while the app runs). */
export function embeddedDatabaseUrl(site: Site): string {
  const info = JSON.parse(fs.readFileSync(path.join(site.dataDir, 'embedded-pg.json'), 'utf8')) as {
    user: string;
    password: string;
    host: string;
    port: number;
    database: string;
  };
  return `postgres://${info.user}:${encodeURIComponent(info.password)}@${info.host}:${info.port}/${info.database}`;
}
