import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bookFindings, unfinishedTasks } from './checks.ts';
import { Client, createSite, embeddedDatabaseUrl, eventually, ledgerCheck, removeSite, smallPng, startApp, startWorker, type Proc, type Site } from './harness.ts';

/**
 * The crash test (issue 9): while checkouts are paid (webhooks delivered by the emulator inside
 * the app) and OCR tasks are settled (by a separate worker process), the app and the worker are
 * killed with SIGKILL at random moments and restarted on the same data dir, a few times. Then no
 * credit may be lost or doubled: every checkout the card form accepted is fulfilled exactly once,
 * every task is charged at most once (exactly its pages when completed), the books balance.
 */
const ROUNDS = Number(process.env.CRASH_TEST_ROUNDS ?? 3);
const ROUND_MS = 8000;

let site: Site;
let app: Proc | undefined;
let worker: Proc | undefined;
let supervising = true;
let workerStarts = 0;

/** Restarts the worker whenever it exits (as systemd or Docker would), once a second at most. */
async function superviseWorker(): Promise<void> {
  while (supervising) {
    if (!worker?.running) {
      worker = startWorker(site);
      workerStarts++;
    }
    await Promise.race([worker.exited, new Promise((r) => setTimeout(r, 1000))]);
    await new Promise((r) => setTimeout(r, 500));
  }
}

beforeAll(async () => {
  site = await createSite('crash', { WORKER: 'off', JOB_LEASE_SECONDS: '10', WORKER_DB_LOST_SECONDS: '5' });
  app = await startApp(site);
});
afterAll(async () => {
  supervising = false;
  await worker?.kill('SIGKILL');
  await app?.kill('SIGTERM');
  removeSite(site);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const between = (a: number, b: number) => a + Math.random() * (b - a);

describe('the crash test', () => {
  it('kill -9 of the app and of the worker during settlements and webhook deliveries loses and doubles no credit', async () => {
    void superviseWorker();
    const users: Client[] = [];
    for (let i = 0; i < 4; i++) {
      const c = new Client(site.baseUrl);
      await c.signup(`crash-${i}-${Date.now()}@example.test`);
      users.push(c);
    }
    const paidSessions = new Set<string>();
    const failures = new Map<string, number>();
    const fail = (what: string): void => void failures.set(what, (failures.get(what) ?? 0) + 1);
    let seed = 0;

    /** Buys the Starter pack: checkout, then the emulator's card form; sometimes visits the success page. */
    async function buy(c: Client): Promise<void> {
      const checkout = await c.request('POST', '/api/payments/checkout', { packageId: 'starter' });
      if (checkout.status !== 201) return fail(`checkout ${checkout.status}`);
      const sessionId = checkout.body.sessionId as string;
      const form = new URLSearchParams({ email: 'buyer@example.test', cardNumber: '4242 4242 4242 4242', cardExpiry: '12 / 34', cardCvc: '123', billingName: 'Crash' });
      const paid = await fetch(`${site.emulatorUrl}/c/pay/${sessionId}`, { method: 'POST', body: form, redirect: 'manual' });
      if (paid.status === 303 && (paid.headers.get('location') ?? '').includes('/checkout/success')) paidSessions.add(sessionId);
      else return fail(`pay ${paid.status}`);
      if (Math.random() < 0.3) await c.request('GET', `/checkout/success?session_id=${sessionId}`, undefined, { Accept: 'text/html' });
    }

    async function uploadOne(c: Client): Promise<void> {
      const res = await c.upload(await smallPng(++seed), `crash-${seed}.png`, `crash-${seed}`);
      if (res.status === 402) return buy(c);
      if (res.status !== 202) fail(`upload ${res.status}`);
    }

    async function load(until: number, fn: (c: Client) => Promise<void>, c: Client) {
      while (Date.now() < until) {
        try {
          await fn(c);
        } catch {
          fail('network'); // the app is down: a client retries later
          await sleep(300);
        }
      }
    }

    const kills: string[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const until = Date.now() + ROUND_MS;
      // each user buys packs and spends them on uploads (a refused upload makes them buy)
      const storm = Promise.all(users.map((c) => load(until, (u) => (Math.random() < 0.35 ? buy(u) : uploadOne(u)), c)));
      await sleep(between(1500, ROUND_MS - 2000));
      const victim = ['app', 'worker', 'both'][Math.floor(Math.random() * 3)]!;
      kills.push(victim);
      if (victim !== 'worker') await app!.kill('SIGKILL');
      if (victim !== 'app') await worker?.kill('SIGKILL');
      if (victim !== 'worker') {
        await sleep(between(200, 1500));
        app = await startApp(site);
      }
      await storm;
    }

    // Let everything settle on the surviving processes: queued jobs, webhook retries.
    const url = embeddedDatabaseUrl(site);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      const unfulfilled = async () => {
        const r = await db.query(`SELECT count(*)::int AS n FROM payments WHERE checkout_session_id = ANY($1) AND status <> 'paid'`, [[...paidSessions]]);
        return r.rows[0].n as number;
      };
      const settled = await eventually(async () => (await unfinishedTasks(url)) === 0 && (await unfulfilled()) === 0, 180_000);
      if (!settled) {
        const stuckTasks = await db.query(`SELECT t.id, t.status, t.attempts, t.created_at, h.status AS hold, j.state AS job
          FROM tasks t LEFT JOIN holds h ON h.id = t.hold_id LEFT JOIN pgboss.job j ON j.id::text = t.job_id::text WHERE t.status IN ('queued', 'processing')`);
        const stuckPayments = await db.query(`SELECT id, status, checkout_session_id FROM payments WHERE checkout_session_id = ANY($1) AND status <> 'paid'`, [[...paidSessions]]);
        console.log('crash test: not settled', { tasks: stuckTasks.rows, payments: stuckPayments.rows });
      }
      expect(settled).toBe(true);
      const fulfilled = await db.query(`SELECT count(*)::int AS n FROM payments WHERE checkout_session_id = ANY($1) AND status = 'paid'`, [[...paidSessions]]);
      expect(fulfilled.rows[0].n).toBe(paidSessions.size);
    } finally {
      await db.end();
    }
    const { findings, counts } = await bookFindings(url);
    console.log('crash test', { kills, workerStarts, paid: paidSessions.size, failures: Object.fromEntries(failures), ...counts });
    expect(findings).toEqual([]);
    expect(paidSessions.size).toBeGreaterThan(0);
    expect(counts.completed).toBeGreaterThan(0);
    const check = await ledgerCheck(site);
    expect(check.output).toMatch(/ledger check: ok/);
    expect(check.code).toBe(0);
  }, 300_000);
});
