import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations } from '../helpers/factories.ts';
import { expectProblem, signup, tinyPng } from '../tasks/tasks-helpers.ts';

let ta: TestApp;
beforeAll(async () => {
  ta = await buildTestApp();
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => ta?.close());

type Agent = request.Agent;
async function createKey(agent: Agent, body: Record<string, unknown>) {
  const res = await agent.post('/api/keys').send({ name: 'script', scopes: ['tasks:read', 'tasks:write', 'credits:read'], ...body }).expect(201);
  return res.body as { key: { id: string; prefix: string }; secret: string };
}
const bearer = (secret: string) => ({ Authorization: `Bearer ${secret}` });

describe('API keys', () => {
  it('are shown once as tly_live_ + 43 base62 characters, stored only as a hash, listed by prefix', async () => {
    const { agent, userId } = await signup(ta.app);
    const { key, secret } = await createKey(agent, { name: 'Nightly import' });
    expect(secret).toMatch(/^tly_live_[0-9A-Za-z]{43}$/);
    expect(secret.startsWith(key.prefix)).toBe(true);
    const row = await ta.t.db('api_keys').where({ user_id: userId }).first();
    expect(JSON.stringify(row)).not.toContain(secret.slice(9));
    const list = await agent.get('/api/keys').expect(200);
    expect(list.body.keys).toEqual([expect.objectContaining({ name: 'Nightly import', prefix: key.prefix, scopes: ['tasks:read', 'tasks:write', 'credits:read'], lastUsedAt: null })]);
    expect(JSON.stringify(list.body)).not.toContain(secret);
    const audit = await ta.t.db('audit_log').where({ action: 'api_key.created', actor_user_id: userId });
    expect(audit).toHaveLength(1);
  });

  it('authenticate JSON API routes without a cookie; the scopes decide; key, team, account and admin routes are refused', async () => {
    const { agent } = await signup(ta.app);
    const { secret } = await createKey(agent, { scopes: ['credits:read'] });
    const ok = await request(ta.app).get('/api/credits/balance').set(bearer(secret)).expect(200);
    expect(ok.body).toMatchObject({ available: 10 });
    expectProblem(await request(ta.app).get('/api/tasks').set(bearer(secret)), 403);
    expectProblem(await request(ta.app).post('/api/tasks').set(bearer(secret)).attach('file', await tinyPng(), 'a.png'), 403);
    for (const [method, url] of [['get', '/api/keys'], ['post', '/api/keys'], ['post', '/api/teams'], ['get', '/api/auth/me'], ['get', '/api/admin/users'], ['post', '/api/payments/checkout']] as const) {
      const res = await request(ta.app)[method](url).set(bearer(secret)).send({});
      expect(expectProblem(res, 403)).toMatchObject({ type: expect.stringMatching(/key_scope_forbidden$/) });
    }
    const list = await agent.get('/api/keys').expect(200);
    expect(list.body.keys[0].lastUsedAt).not.toBeNull();
  });

  it('wrong, malformed and other-prefix keys all get the same 401', async () => {
    const { agent } = await signup(ta.app);
    const { secret } = await createKey(agent, {});
    const tries = [`${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`, 'tly_live_nope', 'garbage', ''];
    const bodies = [];
    for (const k of tries) bodies.push(expectProblem(await request(ta.app).get('/api/credits/balance').set('Authorization', `Bearer ${k}`), 401));
    expect(new Set(bodies.map((b) => JSON.stringify(b))).size).toBe(1);
  });

  it("a key acts as its owner even with another user's session cookie on the request", async () => {
    const a = await signup(ta.app);
    const b = await signup(ta.app);
    const { secret } = await createKey(a.agent, { scopes: ['tasks:read', 'tasks:write'] });
    const res = await b.agent.post('/api/tasks').set(bearer(secret)).attach('file', await tinyPng(), 'a.png').expect(202);
    const task = await ta.t.db('tasks').where({ id: res.body.task.id }).first();
    expect(task.user_id).toBe(a.userId);
    expect((await a.agent.get('/api/credits/balance').expect(200)).body).toMatchObject({ available: 8.5, held: 1.5 });
    expect((await b.agent.get('/api/credits/balance').expect(200)).body).toMatchObject({ available: 10, held: 0 });
  });

  it('a revoked key is refused on the next request', async () => {
    const { agent } = await signup(ta.app);
    const { key, secret } = await createKey(agent, {});
    await request(ta.app).get('/api/credits/balance').set(bearer(secret)).expect(200);
    await agent.delete(`/api/keys/${key.id}`).expect(204);
    expectProblem(await request(ta.app).get('/api/credits/balance').set(bearer(secret)), 401);
    const other = await signup(ta.app);
    expectProblem(await other.agent.delete(`/api/keys/${key.id}`), 404);
  });

  it('past its requests per minute a key gets 429 with Retry-After', async () => {
    const { agent } = await signup(ta.app);
    const { secret } = await createKey(agent, { rateLimitPerMinute: 3 });
    for (let i = 0; i < 3; i++) await request(ta.app).get('/api/credits/balance').set(bearer(secret)).expect(200);
    const res = await request(ta.app).get('/api/credits/balance').set(bearer(secret));
    expectProblem(res, 429);
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(Number(res.headers['retry-after'])).toBeLessThanOrEqual(60);
  });

  it("a key's monthly credit limit holds under concurrent uploads (held counts), and usage shows per key", async () => {
    const { agent, userId } = await signup(ta.app);
    const { key, secret } = await createKey(agent, { monthlyCreditLimit: 4, rateLimitPerMinute: 100 });
    const png = await tinyPng();
    const results = await Promise.all(
      Array.from({ length: 8 }, () => request(ta.app).post('/api/tasks').set(bearer(secret)).attach('file', png, 'a.png')),
    );
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([202, 202, 403, 403, 403, 403, 403, 403]); // 2 × 1.5 ≤ 4 < 3 × 1.5
    const refused = results.find((r) => r.status === 403)!;
    expect(refused.body).toMatchObject({ type: expect.stringMatching(/key-credit-limit-exceeded$/), limit: 4 });
    expect((await agent.get('/api/credits/balance').expect(200)).body).toMatchObject({ available: 7, held: 3 });
    // Posting one hold shows as this month's spend of the key.
    const hold = await ta.t.db('spend_attributions').where({ api_key_id: key.id }).first();
    await ta.deps.ledger.post({ holdId: hold.hold_id, millicredits: 1500, actor: 'system' });
    const list = await agent.get('/api/keys').expect(200);
    expect(list.body.keys[0]).toMatchObject({ spentThisMonth: 1.5, monthlyCreditLimit: 4 });
    expect(await ta.t.db('spend_attributions').where({ user_id: userId })).toHaveLength(2);
    const usage = (await agent.get('/api/credits/transfers?kind=usage').expect(200)).body.transfers;
    expect(usage).toEqual([expect.objectContaining({ amount: -1.5, apiKey: { name: 'script', prefix: key.prefix } })]);
  });

  it('team invitations are written to the email outbox in the invitation\'s transaction, with the one-use link', async () => {
    const { agent } = await signup(ta.app);
    const team = (await agent.post('/api/teams').send({ name: 'Outbox Co' }).expect(201)).body.team;
    await agent.post(`/api/teams/${team.id}/invitations`).send({ email: 'Invitee@Example.test', role: 'member' }).expect(201);
    const mail = await ta.t.db('email_outbox').where({ to_address: 'invitee@example.test', type: 'team_invitation' });
    expect(mail).toHaveLength(1);
    expect(mail[0].subject).toMatch(/invited you to Outbox Co on Tally/);
    expect(mail[0].text_body).toMatch(/http:\/\/localhost:3000\/invitations\/[A-Za-z0-9_-]{43}/);
    expect(mail[0].text_body).not.toContain(team.id);
  });
});
