import crypto from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { projectEmptyAt } from '../../src/insight/runway.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';
import { signedInUser, type Agent } from '../auth/auth-helpers.ts';
import { grantAt, monthStart, spendAt, ym } from './history.ts';

const DAY = 86_400_000;
let ta: TestApp;

beforeAll(async () => {
  ta = await buildTestApp();
});
afterEach(async () => {
  expect(await booksViolations(ta.t.db)).toEqual([]);
});
afterAll(async () => {
  await ta.close();
});

/** The account's posted balance as the ledger keeps it (credits_posted − debits_posted), millicredits. */
async function ledgerBalance(userId: string): Promise<number> {
  const row = await ta.t.db('accounts').where({ user_id: userId }).first(ta.t.db.raw('(credits_posted - debits_posted)::bigint AS b'));
  return (row as { b: number }).b;
}

/** Σ of the account's transfers (in − out) before `at`, millicredits: independent of the statement code. */
async function sumBefore(userId: string, at: Date): Promise<number> {
  const { rows } = await ta.t.db.raw(
    `SELECT COALESCE(SUM(CASE WHEN t.credit_account_id = a.id THEN t.amount ELSE -t.amount END), 0)::bigint AS s
       FROM transfers t JOIN accounts a ON a.user_id = ? AND (t.credit_account_id = a.id OR t.debit_account_id = a.id) WHERE t.created_at < ?`,
    [userId, at],
  );
  return (rows[0] as { s: number }).s;
}

/**
 * A user with three months of history: 100 credits two months ago, spends of 10 then, 5.5 and 1
 * (the last millisecond) last month, 2 at the first instant of this month, the sign-up bonus (10,
 * expiring in 30 days) and a 3-credit job now.
 */
async function userWithHistory(): Promise<{ agent: Agent; userId: string; now: Date }> {
  const { agent, user } = await signedInUser(ta.app);
  const now = new Date();
  const m2 = monthStart(now, -2);
  const m1 = monthStart(now, -1);
  const m0 = monthStart(now, 0);
  const lot = await grantAt(ta.t.db, user.id, 100_000, new Date(m2.getTime() + 9 * DAY));
  await spendAt(ta.t.db, user.id, lot, 10_000, new Date(m2.getTime() + 11 * DAY));
  await spendAt(ta.t.db, user.id, lot, 5_500, new Date(m1.getTime() + 4 * DAY));
  await spendAt(ta.t.db, user.id, lot, 1_000, new Date(m0.getTime() - 1));
  await spendAt(ta.t.db, user.id, lot, 2_000, m0);
  await ta.deps.ledger.debit({ transferId: `job:${crypto.randomUUID()}`, userId: user.id, millicredits: 3_000, kind: 'usage', actor: 'test', reference: { type: 'task', id: crypto.randomUUID() } });
  return { agent, userId: user.id, now };
}

describe('monthly statements', () => {
  it('each month closes on the next month’s opening balance, and this month closes on the ledger’s own balance', async () => {
    const { agent, userId, now } = await userWithHistory();
    const months = [monthStart(now, -3), monthStart(now, -2), monthStart(now, -1), monthStart(now, 0)];
    const statements = [];
    for (const m of months) statements.push((await agent.get(`/api/credits/statements/${ym(m)}`).expect(200)).body);
    expect(statements.map((s) => s.openingBalance)).toEqual([0, 0, 90, 83.5]);
    expect(statements.map((s) => s.closingBalance)).toEqual([0, 90, 83.5, 88.5]);
    for (let i = 0; i + 1 < statements.length; i++) expect(statements[i].closingBalance).toBe(statements[i + 1].openingBalance);
    for (const [i, s] of statements.entries()) {
      // Opening = every transfer before the month, summed straight from the ledger; closing = opening + entries.
      expect(s.openingBalance * 1000).toBe(await sumBefore(userId, months[i]!));
      const sum = s.entries.reduce((t: number, e: { credits: number }) => t + Math.round(e.credits * 1000), 0);
      expect(s.closingBalance * 1000).toBe(s.openingBalance * 1000 + sum);
      if (s.entries.length) expect(s.entries.at(-1).balanceAfter).toBe(s.closingBalance);
    }
    expect(statements[3].closingBalance * 1000).toBe(await ledgerBalance(userId));
    // The last millisecond of last month belongs to last month; the first instant of this month to this one.
    expect(statements[2].entries.map((e: { credits: number }) => e.credits)).toEqual([-5.5, -1]);
    expect(statements[3].entries.map((e: { category: string; credits: number }) => [e.category, e.credits])).toEqual([
      ['spend', -2],
      ['grant', 10],
      ['spend', -3],
    ]);
    expect(statements[3].summary).toEqual({ grant: 10, spend: -5, expiry: 0, refund: 0, adjustment: 0 });
  });

  it('as CSV: opening row, one row per entry, closing row', async () => {
    const { agent, now } = await userWithHistory();
    const res = await agent.get(`/api/credits/statements/${ym(monthStart(now, -1))}?format=csv`).expect(200);
    expect(res.headers['content-type']).toMatch(/^text\/csv/);
    expect(res.headers['content-disposition']).toContain(`tally-statement-${ym(monthStart(now, -1))}.csv`);
    const lines = res.text.replace(/^\uFEFF/, '').trim().split('\n');
    expect(lines[0]).toBe('date_utc,category,kind,credits,balance_after,description,reference');
    expect(lines[1]).toContain('opening_balance');
    expect(lines[1]).toContain(',90,');
    expect(lines).toHaveLength(5);
    expect(lines[4]).toContain('closing_balance');
    expect(lines[4]).toContain(',83.5,');
  });

  it('pages the entries with a cursor; opening, sums and closing stay those of the whole month', async () => {
    const { agent, now } = await userWithHistory();
    const month = ym(monthStart(now, 0));
    const one = (await agent.get(`/api/credits/statements/${month}?limit=2`).expect(200)).body;
    expect(one.entries).toHaveLength(2);
    expect(one.nextCursor).toEqual(expect.any(String));
    expect([one.openingBalance, one.closingBalance]).toEqual([83.5, 88.5]);
    const two = (await agent.get(`/api/credits/statements/${month}?limit=2&cursor=${encodeURIComponent(one.nextCursor)}`).expect(200)).body;
    expect(two.entries).toHaveLength(1);
    expect(two.nextCursor).toBeNull();
    expect(two.summary).toEqual(one.summary);
    expect(two.entries[0].balanceAfter).toBe(88.5);
    expect([...one.entries, ...two.entries].map((e: { credits: number }) => e.credits)).toEqual([-2, 10, -3]);
    expect((await agent.get(`/api/credits/statements/${month}?cursor=nonsense`).expect(400)).body.errors[0].field).toBe('query.cursor');
    expect((await agent.get(`/api/credits/statements/${month}?limit=0`).expect(400)).body.errors[0].field).toBe('query.limit');
  });

  it('refuses a malformed or future month, naming the field', async () => {
    const { agent } = await signedInUser(ta.app);
    const bad = await agent.get('/api/credits/statements/2026-13').expect(400);
    expect(bad.headers['content-type']).toMatch(/application\/problem\+json/);
    expect(bad.body.errors[0].field).toBe('params.month');
    const future = await agent.get(`/api/credits/statements/${ym(monthStart(new Date(), 2))}`).expect(400);
    expect(future.body.errors[0].field).toBe('params.month');
    expect((await agent.get('/api/credits/statements/2026-11?format=xml').expect(400)).body.errors[0].field).toBe('query.format');
  });
});

describe('usage', () => {
  it('sums usage per month and operation, with the range before for comparison', async () => {
    const { agent, now } = await userWithHistory();
    const from = monthStart(now, -2).toISOString().slice(0, 10);
    const to = now.toISOString().slice(0, 10);
    const res = await agent.get(`/api/credits/usage?from=${from}&to=${to}&granularity=month&groupBy=operation`).expect(200);
    expect(res.body.series.map((s: { periodStart: string }) => s.periodStart)).toEqual([monthStart(now, -2), monthStart(now, -1), monthStart(now, 0)].map((d) => d.toISOString()));
    expect(res.body.series.map((s: { credits: number; jobs: number }) => [s.credits, s.jobs])).toEqual([
      [10, 1],
      [6.5, 2],
      [5, 2],
    ]);
    expect(res.body.series[2].operations).toEqual([{ operation: 'ocr', credits: 5, jobs: 2 }]);
    expect(res.body.totals).toEqual({ credits: 21.5, jobs: 5, operations: [{ operation: 'ocr', credits: 21.5, jobs: 5 }] });
    expect(res.body.previousTotals).toEqual({ credits: 0, jobs: 0, operations: [] });
    // The previous range of last month alone is the month before it.
    const m1 = monthStart(now, -1);
    const last = await agent.get(`/api/credits/usage?from=${m1.toISOString()}&to=${monthStart(now, 0).toISOString()}&granularity=day`).expect(200);
    expect(last.body.totals).toEqual({ credits: 6.5, jobs: 2 });
    expect(last.body.series.length).toBe((monthStart(now, 0).getTime() - m1.getTime()) / DAY);
    expect(last.body.series.reduce((s: number, p: { credits: number }) => s + p.credits, 0)).toBe(6.5);
  });

  it('whole days come from the daily rollup, other instants from the transfers: the same figures, and the rollup equals the transfers', async () => {
    const { agent, now } = await userWithHistory();
    const from = monthStart(now, -2);
    const to = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1));
    const byDay = (await agent.get(`/api/credits/usage?from=${from.toISOString()}&to=${to.toISOString()}&granularity=week&groupBy=operation`).expect(200)).body;
    const byInstant = (await agent.get(`/api/credits/usage?from=${new Date(from.getTime() + 1).toISOString()}&to=${new Date(to.getTime() - 1).toISOString()}&granularity=week&groupBy=operation`).expect(200)).body;
    expect(byInstant.series).toEqual(byDay.series);
    expect(byInstant.totals).toEqual(byDay.totals);
    const { rows } = await ta.t.db.raw(
      `SELECT r.account_id, r.day::text, r.operation, r.amount, r.transfers, t.amount AS t_amount, t.n
         FROM usage_daily r FULL JOIN (
           SELECT debit_account_id, (created_at AT TIME ZONE 'UTC')::date AS day, CASE WHEN reference_type = 'task' THEN 'ocr' ELSE COALESCE(reference_type, 'other') END AS operation,
                  SUM(amount)::bigint AS amount, COUNT(*)::bigint AS n
             FROM transfers WHERE kind = 'usage' GROUP BY 1, 2, 3) t
           ON t.debit_account_id = r.account_id AND t.day = r.day AND t.operation = r.operation
        WHERE r.amount IS DISTINCT FROM t.amount OR r.transfers IS DISTINCT FROM t.n`,
    );
    expect(rows).toEqual([]);
  });

  it('a range from any instant: its whole days from the rollup, the parts of a day at either end from the transfers, equal to the transfers', async () => {
    const { agent, userId, now } = await userWithHistory();
    const m0 = monthStart(now, 0);
    const m1 = monthStart(now, -1);
    const m2 = monthStart(now, -2);
    const at = (ms: number) => new Date(ms);
    const ranges: Array<[Date, Date]> = [
      [at(m0.getTime() - 1), at(m0.getTime() + 1)], // within no whole day: the 1-credit job at the last ms of last month and the 2-credit job at midnight
      [at(m0.getTime() - 1), at(m0.getTime() + DAY + 1)], // an edge of 1 ms before a whole day
      [at(m0.getTime() + 1), at(m0.getTime() + 2 * DAY)], // starts 1 ms after the 2-credit job
      [at(m1.getTime() + 4 * DAY + 1), at(now.getTime() + DAY)], // starts 1 ms after the 5.5-credit job
      [at(m2.getTime() + 11 * DAY - 12 * 3600_000), at(m1.getTime() + 4 * DAY + 1)], // noon to 1 ms past a job
    ];
    for (const [from, to] of ranges) {
      const { rows } = await ta.t.db.raw(
        `SELECT COALESCE(SUM(t.amount), 0)::bigint AS s, COUNT(*)::int AS n FROM transfers t JOIN accounts a ON a.id = t.debit_account_id AND a.user_id = ?
          WHERE t.kind = 'usage' AND t.created_at >= ? AND t.created_at < ?`,
        [userId, from, to],
      );
      const expected = rows[0] as { s: number; n: number };
      const body = (await agent.get(`/api/credits/usage?from=${from.toISOString()}&to=${to.toISOString()}&granularity=day`).expect(200)).body;
      expect({ range: [from.toISOString(), to.toISOString()], millicredits: body.totals.credits * 1000, jobs: body.totals.jobs }).toEqual({
        range: [from.toISOString(), to.toISOString()],
        millicredits: expected.s,
        jobs: expected.n,
      });
      expect(body.series.reduce((sum: number, p: { credits: number }) => sum + p.credits * 1000, 0)).toBe(expected.s);
    }
    // The ranges above are not all empty: the first holds the two jobs either side of midnight.
    const first = (await agent.get(`/api/credits/usage?from=${ranges[0]![0].toISOString()}&to=${ranges[0]![1].toISOString()}&granularity=day`).expect(200)).body;
    expect(first.totals).toEqual({ credits: 3, jobs: 2 });
  });

  it('ranges at the edges of the calendar answer, never a 5xx (the rollup\'s days are computed by PostgreSQL, not from ISO strings)', async () => {
    const { agent } = await signedInUser(ta.app);
    for (const q of ['from=9999-12-30&to=9999-12-31T23:59:59.999Z', 'from=0001-06-01T12:00:00Z&to=0015-01-01T00:00:00Z&granularity=month']) {
      const res = await agent.get(`/api/credits/usage?${q}`);
      expect({ q, status: res.status < 500 }).toEqual({ q, status: true });
    }
  });

  it('refuses bad parameters with problem+json naming each field', async () => {
    const { agent } = await signedInUser(ta.app);
    const cases: Array<[string, string]> = [
      ['granularity=hour', 'query.granularity'],
      ['from=yesterday', 'query.from'],
      ['from=2026-11-10&to=2026-11-01', 'query.to'],
      ['groupBy=colour', 'query.groupBy'],
      ['limit=3', 'query.limit'],
      ['from=2020-01-01&to=2026-01-01&granularity=day', 'query.from'],
    ];
    for (const [query, field] of cases) {
      const res = await agent.get(`/api/credits/usage?${query}`).expect(400);
      expect(res.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
    }
  });

  it('stats: balance, spend this month and over 30 days, the runway and the next expiry', async () => {
    const { agent, userId, now } = await userWithHistory();
    const s = (await agent.get('/api/credits/stats').expect(200)).body;
    const { rows } = await ta.t.db.raw(
      `SELECT COALESCE(SUM(t.amount), 0)::bigint AS s FROM transfers t JOIN accounts a ON a.id = t.debit_account_id AND a.user_id = ? WHERE t.kind = 'usage' AND t.created_at >= ?`,
      [userId, new Date(Date.now() - 30 * DAY)],
    );
    const last30 = (rows[0] as { s: number }).s;
    expect(s.available).toBe(88.5);
    expect(s.held).toBe(0);
    expect(s.debt).toBe(0);
    expect(s.spentThisMonth).toBe(5);
    expect(s.spentLast30Days * 1000).toBe(last30);
    expect(s.averageDailySpend * 1000).toBe(Math.floor(last30 / 30));
    // The 3-credit job drew from the sign-up bonus (it expires first): 7 of its 10 credits are left.
    expect(s.nextExpiry.credits).toBe(7);
    expect(new Date(s.nextExpiry.at).getTime()).toBeGreaterThan(now.getTime() + 29 * DAY);
    expect(s.projectedEmptyAt).not.toBeNull();
    expect(s.runwayDays).toBe(Math.floor((new Date(s.projectedEmptyAt).getTime() - Date.now()) / DAY));
  });

  it('estimate vs actual: a job held 4 credits and was charged 3 (75%)', async () => {
    const { agent, user } = await signedInUser(ta.app);
    const holdId = `hold:${crypto.randomUUID()}`;
    await ta.deps.ledger.reserve({ holdId, userId: user.id, millicredits: 4_000, timeoutMs: 60_000, actor: 'test' });
    await ta.deps.ledger.post({ holdId, millicredits: 3_000, actor: 'test' });
    const res = (await agent.get('/api/credits/jobs').expect(200)).body;
    expect(res.jobs).toHaveLength(1);
    expect(res.jobs[0]).toMatchObject({ estimated: 4, actual: 3, percentOfEstimate: 75 });
    expect(res.averagePercent).toBe(75);
  });
});

describe('pages', () => {
  it('/account links to usage and statements; the usage page shows the runway, the chart and its table', async () => {
    const { agent, now } = await userWithHistory();
    const account = await agent.get('/account').expect(200);
    expect(account.text).toContain('href="/account/usage"');
    expect(account.text).toContain('href="/account/statements"');
    const page = await agent.get('/account/usage').expect(200);
    expect(page.text).toMatch(/At your last-30-day rate your credits last until <strong>\d{1,2} [A-Z][a-z]{2} \d{4}<\/strong>/);
    expect(page.text).toContain('id="usage-chart"');
    expect(page.text).toContain('src="/static/insight-charts.js"');
    expect(page.text).toContain('data-testid="usage-table"');
    const bad = await agent.get('/account/usage?granularity=hour').expect(400);
    expect(bad.text).toContain('granularity');
    const list = await agent.get('/account/statements').expect(200);
    expect(list.text).toContain(`href="/account/statements/${ym(monthStart(now, -1))}"`);
    const one = await agent.get(`/account/statements/${ym(monthStart(now, -1))}`).expect(200);
    expect(one.text).toContain('data-testid="closing">83.5<');
  });

  it('serves Chart.js and the chart script as files (no inline script under the CSP)', async () => {
    const { agent } = await signedInUser(ta.app);
    await agent.get('/static/chart/chart.umd.min.js').expect(200);
    await agent.get('/static/insight-charts.js').expect(200);
  });
});

describe('runway forecast', () => {
  const now = new Date('2026-11-30T12:00:00Z');
  const at = (days: number) => new Date(now.getTime() + days * DAY);
  it('runs for balance ÷ daily spend without expiring lots', () => {
    expect(projectEmptyAt([{ free: 10_000, expiresAt: null }], 0, 1_000, now)).toEqual(at(10));
  });
  it('loses what a lot still holds when it expires, spending it first', () => {
    // 10 credits expiring in 2 days: 2 are spent, 8 expire; then 5 never-expiring credits last 5 days.
    expect(projectEmptyAt([{ free: 5_000, expiresAt: null }, { free: 10_000, expiresAt: at(2) }], 0, 1_000, now)).toEqual(at(7));
  });
  it('repays debt first, and gives no date without spending', () => {
    expect(projectEmptyAt([{ free: 5_000, expiresAt: null }], 2_000, 1_000, now)).toEqual(at(3));
    expect(projectEmptyAt([{ free: 5_000, expiresAt: null }], 0, 0, now)).toBeNull();
    expect(projectEmptyAt([], 0, 1_000, now)).toEqual(now);
  });
});
