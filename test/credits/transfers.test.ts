import crypto from 'node:crypto';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations, fundAccount } from '../helpers/factories.ts';
import { csrfFrom, signedInUser, type Agent } from '../auth/auth-helpers.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => t.close());

const spend = (userId: string, millicredits: number, reason = 'OCR job') =>
  t.deps.ledger.debit({ transferId: `spend:${crypto.randomUUID()}`, userId, millicredits, kind: 'usage', actor: 'system', reason });

describe('GET /api/credits/transfers', () => {
  let agent: Agent;
  let userId: string;
  beforeAll(async () => {
    const u = await signedInUser(t.app);
    agent = u.agent;
    userId = u.user.id;
    await fundAccount(t.deps.ledger, userId, 5_000);
    await spend(userId, 1_500);
    await spend(userId, 250, 'Thumbnail');
  });

  it('lists own history newest first with the balance after each entry', async () => {
    const res = await agent.get('/api/credits/transfers');
    expect(res.status).toBe(200);
    expect(res.body.transfers.map((e: { kind: string; amount: number; balanceAfter: number }) => [e.kind, e.amount, e.balanceAfter])).toEqual([
      ['usage', -0.25, 13.25],
      ['usage', -1.5, 13.5],
      ['bonus', 5, 15],
      ['signup_bonus', 10, 10],
    ]);
    expect(res.body.transfers[0]).toMatchObject({ reason: 'Thumbnail', createdAt: expect.any(String) });
    expect(res.body.transfers[0]).not.toHaveProperty('actor');
    expect(res.body.nextCursor).toBeNull();
  });

  it('filters by kind and date range, and pages with limit and cursor', async () => {
    const usage = await agent.get('/api/credits/transfers').query({ kind: 'usage' });
    expect(usage.body.transfers).toHaveLength(2);
    const today = new Date().toISOString().slice(0, 10);
    expect((await agent.get('/api/credits/transfers').query({ from: today, to: today })).body.transfers).toHaveLength(4);
    expect((await agent.get('/api/credits/transfers').query({ to: '2001-01-01' })).body.transfers).toHaveLength(0);
    expect((await agent.get('/api/credits/transfers').query({ kind: '', from: '', to: '' })).body.transfers).toHaveLength(4);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: request.Response = await agent.get('/api/credits/transfers').query({ limit: 3, ...(cursor ? { cursor } : {}) });
      seen.push(...page.body.transfers.map((e: { id: string }) => e.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toHaveLength(4);
    expect(new Set(seen).size).toBe(4);
  });

  it('refuses bad queries, listing each field', async () => {
    const res = await agent.get('/api/credits/transfers').query({ kind: 'windfall', from: 'yesterday', limit: 0, userId: 'x' });
    expect(res.status).toBe(400);
    expect(res.body.errors.map((e: { field: string }) => e.field)).toEqual(expect.arrayContaining(['query.kind', 'query.from', 'query.limit', 'query.userId']));
    expect((await agent.get('/api/credits/transfers').query({ cursor: 'not-ours' })).status).toBe(400);
    expect((await agent.get('/api/credits/transfers').query({ from: '2026-02-01', to: '2026-01-01' })).status).toBe(400);
  });

  it('shows a single own transfer, and 404 for another user’s (IDOR)', async () => {
    const mine = (await agent.get('/api/credits/transfers')).body.transfers[0];
    const own = await agent.get(`/api/credits/transfers/${encodeURIComponent(mine.id)}`);
    expect(own.status).toBe(200);
    expect(own.body.transfer).toEqual(mine);

    const { agent: other, user: otherUser } = await signedInUser(t.app);
    const peek = await other.get(`/api/credits/transfers/${encodeURIComponent(mine.id)}`);
    expect(peek.status).toBe(404);
    expect(peek.body.detail).toBe('No such transfer.');
    // Their own history never includes someone else's rows.
    const theirs = (await other.get('/api/credits/transfers')).body.transfers;
    expect(theirs.map((e: { id: string }) => e.id)).toEqual([`signup_bonus:${otherUser.id}`]);
    expect((await other.get('/api/credits/transfers/no-such-transfer')).status).toBe(404);
  });

  it('exports CSV: a header, every row, plain decimals, an attachment filename, formulas escaped', async () => {
    const res = await agent.get('/api/credits/transfers').query({ format: 'csv' });
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('text/csv; charset=utf-8');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="?tally-transfers-\d{4}-\d{2}-\d{2}\.csv"?$/);
    const text = res.text.replace(/^\uFEFF/, '');
    const lines = text.trim().split('\n');
    expect(lines[0]).toBe('date_utc,transfer_id,kind,credits,balance_after,reason,reference');
    expect(lines).toHaveLength(5);
    expect(lines[1]).toMatch(/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2},spend:[^,]+,usage,-0\.25,13\.25,Thumbnail,$/);
    expect(lines[4]).toMatch(/,signup_bonus,10,10,Welcome bonus,user:/);

    const usageOnly = await agent.get('/api/credits/transfers').query({ format: 'csv', kind: 'usage' });
    expect(usageOnly.text.trim().split('\n')).toHaveLength(3);
  });
});

describe('CSV export of a long history', () => {
  it('streams all matching rows across pages, and escapes formula-like reasons', async () => {
    const { agent, user } = await signedInUser(t.app);
    await fundAccount(t.deps.ledger, user.id, 1_000_000);
    const n = 1_100;
    for (let i = 0; i < n; i++) await spend(user.id, 1, i === 0 ? '=HYPERLINK("http://evil.example","x")' : `job ${i}`);
    const res = await agent.get('/api/credits/transfers').query({ format: 'csv' });
    expect(res.status).toBe(200);
    const lines = res.text.replace(/^\uFEFF/, '').trim().split('\n');
    expect(lines).toHaveLength(1 + n + 2); // header + spends + signup bonus + funding
    const ids = lines.slice(1).map((l) => l.split(',')[1]);
    expect(new Set(ids).size).toBe(n + 2);
    expect(res.text).toContain(`"'=HYPERLINK(""http://evil.example"",""x"")"`);
    expect(res.text).toContain(',-0.001,');
    expect(await booksViolations(t.t.db)).toEqual([]);
  });
});

describe('/account page', () => {
  it('shows balance, lots with expiry, holds, history with reasons, filters, pages, a CSV link and the pricing link', async () => {
    const { agent, user } = await signedInUser(t.app, { name: 'Ada' });
    for (let i = 0; i < 30; i++) await spend(user.id, 10, `page job ${i}`);
    await t.deps.ledger.reserve({ holdId: `acct-hold-${user.id}`, userId: user.id, millicredits: 2_000, timeoutMs: 3_600_000, actor: 'system', reference: { type: 'task', id: 'abc' } });

    const page = await agent.get('/account');
    expect(page.status).toBe(200);
    expect(page.text).toMatch(/data-testid="available">7.7</);
    expect(page.text).toMatch(/data-testid="held">2</);
    expect(page.text.match(/data-testid="lot"/g)).toHaveLength(1);
    expect(page.text.match(/data-testid="hold"/g)).toHaveLength(1);
    expect(page.text.match(/data-testid="transfer"/g)).toHaveLength(25);
    expect(page.text).toContain('page job 29');
    expect(page.text).toContain('href="/pricing"');
    expect(page.text).toContain('href="/api/credits/transfers?format=csv"');
    expect(page.text).toContain('data-section="payments"'); // the payments feature's purchases list

    const older = /href="([^"]+)" data-testid="older"/.exec(page.text)![1]!.replace(/&amp;/g, '&');
    const page2 = await agent.get(older);
    expect(page2.text.match(/data-testid="transfer"/g)).toHaveLength(6);
    expect(page2.text).toContain('Welcome bonus');

    const filtered = await agent.get('/account').query({ kind: 'signup_bonus' });
    expect(filtered.text.match(/data-testid="transfer"/g)).toHaveLength(1);
    expect(filtered.text).toContain('href="/api/credits/transfers?kind=signup_bonus&amp;format=csv"');

    const bad = await agent.get('/account').query({ from: 'soon' });
    expect(bad.status).toBe(400);
    expect(bad.text).toContain('from must be a date');
    await t.deps.ledger.void({ holdId: `acct-hold-${user.id}`, actor: 'system' });
  });

  it('signs out other sessions from the sessions list (CSRF-protected form)', async () => {
    const { agent, user } = await signedInUser(t.app);
    const other = request.agent(t.app);
    await other.post('/api/auth/login').send({ email: user.email, password: 'correct-lamp-battery-42' });
    const page = await agent.get('/account');
    expect(page.text.match(/data-testid="session"/g)).toHaveLength(2);
    expect((await agent.post('/account/sessions/revoke-others').type('form').send({})).status).toBe(403);
    const res = await agent.post('/account/sessions/revoke-others').type('form').send({ _csrf: csrfFrom(page.text) });
    expect(res.status).toBe(303);
    expect((await other.get('/api/auth/me')).status).toBe(401);
    expect((await agent.get('/account')).text).toContain('Signed out 1 other session.');
  });
});
