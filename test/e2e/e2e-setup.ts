import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { findFreePort } from '../../src/db/embedded-postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    baseUrl: string;
    adminEmail: string;
    adminPassword: string;
  }
}

const ADMIN_EMAIL = 'admin@tally.test';
const ADMIN_PASSWORD = 'e2e-admin-password-1234';
let child: ChildProcess | undefined;
let dataDir: string | undefined;

/**
 * Starts the app as a user would (`tsx src/main/server.ts`, i.e. `npm start`) on a free port with an
 * embedded PostgreSQL in a temp data dir and the built-in Stripe emulator on another free port,
 * and waits for /readyz.
 */
export async function setup(project: TestProject) {
  // A server that is already running (a developer's `npm start`): E2E_BASE_URL=http://127.0.0.1:3000
  const given = process.env.E2E_BASE_URL;
  if (given) {
    project.provide('baseUrl', given.replace(/\/$/, ''));
    project.provide('adminEmail', process.env.E2E_ADMIN_EMAIL ?? ADMIN_EMAIL);
    project.provide('adminPassword', process.env.E2E_ADMIN_PASSWORD ?? ADMIN_PASSWORD);
    return;
  }
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-e2e-'));
  fs.chmodSync(dataDir, 0o755);
  const port = await findFreePort();
  const emulatorPort = await findFreePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const logFile = path.join(process.cwd(), 'test-results', 'e2e-server.log');
  fs.mkdirSync(path.dirname(logFile), { recursive: true });
  const log = fs.openSync(logFile, 'w');
  child = spawn(process.execPath, ['--import', 'tsx', 'src/main/server.ts'], {
    cwd: process.cwd(),
    env: {
      ...process.env,
      NODE_ENV: 'development',
      PORT: String(port),
      HOST: '127.0.0.1',
      APP_URL: baseUrl,
      DATA_DIR: dataDir,
      STRIPE_EMULATOR_PORT: String(emulatorPort),
      ADMIN_EMAIL,
      ADMIN_PASSWORD,
      SIGNUP_MAX_PER_IP: '1000', // every journey signs up from 127.0.0.1
      LOG_LEVEL: 'info',
      STRIPE_SECRET_KEY: '',
      DATABASE_URL: '',
    },
    stdio: ['ignore', log, log],
  });
  fs.closeSync(log); // the child keeps its own copy
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`the app exited (${child.exitCode}); see ${logFile}`);
    try {
      const res = await fetch(`${baseUrl}/readyz`);
      if (res.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error(`the app did not become ready; see ${logFile}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  project.provide('baseUrl', baseUrl);
  project.provide('adminEmail', ADMIN_EMAIL);
  project.provide('adminPassword', ADMIN_PASSWORD);
}

export async function teardown() {
  if (child && child.exitCode === null) {
    const exited = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise((r) => (timer = setTimeout(r, 20_000)))]);
    clearTimeout(timer);
    if (child.exitCode === null) child.kill('SIGKILL');
  }
  if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
}
