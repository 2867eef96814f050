import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { Db } from '../src/db/database.ts';
import { freePort, request, startApp, waitForApp } from './http-bench.ts';

/** Transfers seeded in all, users, and the heavy user's share (issue 18). */
const TOTAL_TRANSFERS = Number(process.env.BENCH_INSIGHT_TRANSFERS ?? 1_000_000);
const USERS = Number(process.env.BENCH_INSIGHT_USERS ?? 10_000);
const HEAVY_TRANSFERS = Math.round(TOTAL_TRANSFERS / 10);
const PAYMENTS = 50_000;
const SAMPLES = Number(process.env.BENCH_INSIGHT_SAMPLES ?? 100);

/**
 * Seeds, set-based (generate_series, one statement per table), a year of history the way the
 * ledger writes it: per account one bonus grant (a lot) and many usage transfers drawn from it
 * (allocations), account totals to match; `heavyUserId` gets a tenth of all transfers, the other
 * users share the rest. Plus paid payments (and some refunds) for the revenue report.
 */
async function seed(db: Db, heavyUserId: string): Promise<void> {
  const t0 = performance.now();
  const others = USERS - 1;
  const perOther = Math.floor((TOTAL_TRANSFERS - HEAVY_TRANSFERS - USERS) / others);
  await db.raw(`SET synchronous_commit = off`);
  await db.raw(
    `INSERT INTO users (email, name, password_hash, role, created_at)
     SELECT 'seed-' || g || '@example.test', 'Seed user ' || g, 'x', 'user', now() - interval '400 days' + (g % 400) * interval '1 day'
       FROM generate_series(1, ?) g`,
    [others],
  );
  await db.raw(`INSERT INTO accounts (user_id) SELECT id FROM users WHERE email LIKE 'seed-%@example.test'`);
  await db.raw(`CREATE TEMP TABLE seed_accounts AS
                  SELECT a.id AS account_id, a.user_id, row_number() OVER (ORDER BY a.id) AS rn,
                         CASE WHEN a.user_id = ? THEN ?::int ELSE ?::int END AS n
                    FROM accounts a JOIN users u ON u.id = a.user_id
                   WHERE u.email LIKE 'seed-%@example.test' OR a.user_id = ?`, [heavyUserId, HEAVY_TRANSFERS, perOther, heavyUserId]);
  const { usage, promotions } = (await db.raw(`SELECT (SELECT id FROM accounts WHERE code = 'usage') AS usage, (SELECT id FROM accounts WHERE code = 'promotions') AS promotions`)).rows[0] as { usage: string; promotions: string };
  // Usage: 1–2.5 credits a job, spread over the last 365 days; one in five is not OCR. The daily
  // rollup's row trigger is paused for the bulk insert and the rollup filled set-based after it,
  // as its migration does.
  await db.raw('ALTER TABLE transfers DISABLE TRIGGER transfers_usage_daily');
  await db.raw(
    `INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, reference_type, reference_id, created_at)
     SELECT 'seed-use-' || s.rn || '-' || g, s.account_id, ?, 1000 + (g % 7) * 250, 'usage', 'Seeded job', 'bench',
            CASE WHEN g % 5 = 0 THEN 'bench' ELSE 'task' END, md5(s.rn || '-' || g),
            date_trunc('milliseconds', now() - random() * interval '365 days')
       FROM seed_accounts s, generate_series(1, s.n) g`,
    [usage],
  );
  await db.raw(
    `INSERT INTO usage_daily (account_id, day, operation, amount, transfers)
     SELECT debit_account_id, (created_at AT TIME ZONE 'UTC')::date,
            CASE WHEN reference_type = 'task' THEN 'ocr' ELSE COALESCE(reference_type, 'other') END, SUM(amount), COUNT(*)
       FROM transfers WHERE kind = 'usage' AND id LIKE 'seed-use-%' GROUP BY 1, 2, 3
     ON CONFLICT (account_id, day, operation) DO UPDATE SET amount = usage_daily.amount + EXCLUDED.amount, transfers = usage_daily.transfers + EXCLUDED.transfers`,
  );
  await db.raw('ALTER TABLE transfers ENABLE TRIGGER transfers_usage_daily');
  await db.raw(
    `INSERT INTO transfers (id, debit_account_id, credit_account_id, amount, kind, reason, actor, created_at)
     SELECT 'seed-grant-' || s.rn, ?, s.account_id, x.spent + 100000, 'bonus', 'Seeded grant', 'bench', now() - interval '366 days'
       FROM seed_accounts s, LATERAL (SELECT SUM(t.amount) AS spent FROM transfers t WHERE t.debit_account_id = s.account_id AND t.kind = 'usage') x`,
    [promotions],
  );
  await db.raw(
    `INSERT INTO lots (account_id, transfer_id, source, amount, remaining, created_at)
     SELECT credit_account_id, id, 'bonus', amount, 100000, created_at FROM transfers WHERE id LIKE 'seed-grant-%'`,
  );
  await db.raw(
    `INSERT INTO transfer_allocations (transfer_id, lot_id, amount, created_at)
     SELECT t.id, l.id, t.amount, t.created_at FROM transfers t JOIN lots l ON l.account_id = t.debit_account_id AND l.transfer_id LIKE 'seed-grant-%'
      WHERE t.id LIKE 'seed-use-%'`,
  );
  await db.raw(
    `UPDATE accounts a SET credits_posted = a.credits_posted + x.granted, debits_posted = a.debits_posted + x.spent
       FROM (SELECT s.account_id,
                    (SELECT amount FROM transfers WHERE id = 'seed-grant-' || s.rn) AS granted,
                    (SELECT SUM(amount) FROM transfers WHERE debit_account_id = s.account_id AND kind = 'usage' AND id LIKE 'seed-use-%') AS spent
               FROM seed_accounts s) x
      WHERE a.id = x.account_id`,
  );
  await db.raw(
    `INSERT INTO payments (user_id, package_id, status, credits_millicredits, bonus_millicredits, amount_cents, currency, created_at, paid_at, updated_at)
     SELECT s.user_id, p.id, 'paid', p.credits_millicredits, p.bonus_millicredits, p.amount_cents, p.currency, x.t, x.t, x.t
       FROM generate_series(1, ?) g
       JOIN seed_accounts s ON s.rn = 1 + g % (SELECT COUNT(*) FROM seed_accounts)
       JOIN credit_packages p ON p.id = (ARRAY['starter', 'professional', 'enterprise'])[1 + g % 3],
       LATERAL (SELECT now() - random() * interval '365 days' + g * interval '0 seconds' AS t) x`,
    [PAYMENTS],
  );
  await db.raw(
    `WITH r AS (SELECT id, amount_cents / 4 AS cents, paid_at + interval '1 day' AS at FROM payments WHERE package_id = 'professional' ORDER BY id LIMIT ?)
     , u AS (UPDATE payments p SET refunded_cents = r.cents, status = 'partially_refunded' FROM r WHERE p.id = r.id RETURNING p.id)
     INSERT INTO payment_refunds (id, payment_id, amount_cents, status, created_at) SELECT 're_seed_' || md5(r.id::text), r.id, r.cents, 'succeeded', least(r.at, now()) FROM r`,
    [Math.round(PAYMENTS / 50)],
  );
  await db.raw('VACUUM ANALYZE transfers');
  await db.raw('VACUUM ANALYZE transfer_allocations');
  await db.raw('VACUUM ANALYZE lots');
  await db.raw('VACUUM ANALYZE accounts');
  await db.raw('VACUUM ANALYZE payments');
  await db.raw('VACUUM ANALYZE payment_refunds');
  await db.raw('VACUUM ANALYZE usage_daily');
  const n = (await db.raw(`SELECT COUNT(*)::bigint AS n FROM transfers`)).rows[0].n as number;
  console.log(`  seeded ${n.toLocaleString('en')} transfers (${HEAVY_TRANSFERS.toLocaleString('en')} of the heavy user), ${USERS.toLocaleString('en')} users, ${PAYMENTS.toLocaleString('en')} payments in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

/**
 * The insight endpoints under a year of history (issue 18): 1,000,000 transfers across 10,000
 * users seeded set-based; an app started as `npm start` does; each endpoint requested `SAMPLES`
 * times in a row by the heavy user (100,000 transfers) or an admin, after a warm-up. Prints
 * `p95 NAME = X ms (p50 Y ms)`; the user endpoints' target is p95 < 100 ms. Usage over whole days
 * reads the daily rollup (`usage_daily`); `usage-year-by-month-from-an-instant` asks for the same
 * year from one millisecond after midnight, and `usage-30d-from-an-instant` for the 30 days up to
 * this very instant: their whole days come from the rollup, the parts of a day at either end from
 * the transfers. Then the same for the
 * user endpoints without `transfers_usage_by_account` and the yearly revenue report without
 * `payments_paid_by_day`, to show what each index buys.
 */
export async function benchInsight(db: Db, url: string): Promise<void> {
  const port = await freePort();
  const adminEmail = 'bench-admin@example.test';
  const adminPassword = crypto.randomBytes(16).toString('hex');
  const { child, dataDir } = startApp(url, port, { ADMIN_EMAIL: adminEmail, ADMIN_PASSWORD: adminPassword });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    await waitForApp(agent, port, child, 60);
    const signup = await request(agent, port, 'POST', '/api/auth/signup', {}, JSON.stringify({ email: `heavy-${crypto.randomUUID()}@example.test`, password: 'correct horse battery staple', name: 'Heavy User' }));
    if (signup.status !== 201 || !signup.cookie) throw new Error(`bench signup → ${signup.status} ${signup.body}`);
    const heavy = { cookie: signup.cookie, id: (JSON.parse(signup.body) as { user: { id: string } }).user.id };
    const login = await request(agent, port, 'POST', '/api/auth/login', {}, JSON.stringify({ email: adminEmail, password: adminPassword }));
    if (login.status !== 200 || !login.cookie) throw new Error(`bench admin login → ${login.status} ${login.body}`);
    await seed(db, heavy.id);

    const now = new Date();
    const month = now.toISOString().slice(0, 7);
    const lastMonth = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() - 1, 1)).toISOString().slice(0, 7);
    const yearAgo = new Date(now.getTime() - 365 * 86_400_000).toISOString().slice(0, 10);
    const yearAgoInstant = new Date(Date.parse(`${yearAgo}T00:00:00Z`) + 1).toISOString();
    const userFigures: Array<[string, string]> = [
      ['usage-30d', '/api/credits/usage'],
      ['usage-year-by-month', `/api/credits/usage?from=${yearAgo}&granularity=month&groupBy=operation`],
      ['usage-year-by-month-from-an-instant', `/api/credits/usage?from=${yearAgoInstant}&granularity=month&groupBy=operation`],
      ['usage-30d-from-an-instant', `/api/credits/usage?from=${new Date(now.getTime() - 30 * 86_400_000).toISOString()}&to=${now.toISOString()}&groupBy=operation`],
      ['stats', '/api/credits/stats'],
      ['statement-this-month', `/api/credits/statements/${month}`],
      ['statement-last-month', `/api/credits/statements/${lastMonth}`],
    ];
    const adminFigures: Array<[string, string]> = [
      ['admin-revenue-30d', '/api/admin/reports/revenue'],
      ['admin-revenue-year-by-month', `/api/admin/reports/revenue?from=${yearAgo}&granularity=month`],
    ];
    const measure = async (name: string, path_: string, cookie: string, label = '') => {
      const times: number[] = [];
      let bytes = 0;
      for (let i = 0; i < SAMPLES + 10; i++) {
        const t = performance.now();
        const r = await request(agent, port, 'GET', path_, { Cookie: cookie });
        const ms = performance.now() - t;
        if (r.status !== 200) throw new Error(`${path_} → ${r.status} ${r.body.slice(0, 300)}`);
        bytes = r.body.length;
        if (i >= 10) times.push(ms); // the first ten warm up plans and caches
      }
      times.sort((a, b) => a - b);
      console.log(`p95 ${name}${label} = ${pct(times, 95).toFixed(1)} ms   (p50 ${pct(times, 50).toFixed(1)} ms, ${SAMPLES} requests, ${(bytes / 1024).toFixed(0)} KiB)`);
    };
    for (const [name, p] of userFigures) await measure(name, p, heavy.cookie);
    for (const [name, p] of adminFigures) await measure(name, p, login.cookie!);

    // What the indexes buy: the same user figures without them (then put back).
    await db.raw('DROP INDEX transfers_usage_by_account');
    try {
      for (const [name, p] of [userFigures[2]!, userFigures[3]!, userFigures[4]!]) await measure(name, p, heavy.cookie, ' (without transfers_usage_by_account)');
    } finally {
      await db.raw(`CREATE INDEX transfers_usage_by_account ON transfers (debit_account_id, created_at) INCLUDE (amount, reference_type) WHERE kind = 'usage'`);
    }
    await db.raw('DROP INDEX payments_paid_by_day');
    try {
      await measure(adminFigures[1]![0], adminFigures[1]![1], login.cookie!, ' (without payments_paid_by_day)');
    } finally {
      await db.raw(`CREATE INDEX payments_paid_by_day ON payments ((date_trunc('day', paid_at AT TIME ZONE 'UTC')), currency, package_id) INCLUDE (amount_cents) WHERE paid_at IS NOT NULL`);
    }
  } finally {
    agent.destroy();
    child.kill('SIGTERM');
    await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once('exit', r)));
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
}
