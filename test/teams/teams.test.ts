import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { booksViolations, fundAccount } from '../helpers/factories.ts';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import type { TestApp } from '../helpers/app.ts';
import { payOnCheckoutPage, startStripeTestApp, type StripeTestApp } from '../helpers/stripe-app.ts';
import { expectProblem, signup, tinyPng } from '../tasks/tasks-helpers.ts';
import { csrfFrom } from '../auth/auth-helpers.ts';

let app: StripeTestApp;
let ta: TestApp;
let emulator: StripeEmulatorServer;
const mail: Array<{ to: string; acceptUrl: string; teamName: string }> = [];

beforeAll(async () => {
  app = await startStripeTestApp({
    overrides: () => ({ invitationMailer: { async sendInvitation(msg) { mail.push(msg); } } }),
  });
  ({ ta, emulator } = app);
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => {
  await app.close();
});

type Agent = request.Agent;
async function emailOf(userId: string): Promise<string> {
  return (await ta.t.db('users').where({ id: userId }).first('email')).email;
}

/** A team owned by a new user, with `n` more members who joined through emailed invitations. */
async function teamWith(n: number) {
  const owner = await signup(ta.app);
  const team = (await owner.agent.post('/api/teams').send({ name: 'Acme' }).expect(201)).body.team as { id: string };
  const members: Array<{ agent: Agent; userId: string }> = [];
  for (let i = 0; i < n; i++) {
    const m = await signup(ta.app);
    await owner.agent.post(`/api/teams/${team.id}/invitations`).send({ email: await emailOf(m.userId), role: 'member' }).expect(201);
    const token = new URL(mail.at(-1)!.acceptUrl).pathname.split('/').pop()!;
    await m.agent.post(`/api/invitations/${token}/accept`).expect(200);
    members.push(m);
  }
  return { owner, team, members };
}

const uploadTo = async (agent: Agent, teamId: string) => agent.post('/api/tasks').field('wallet', `team:${teamId}`).attach('file', await tinyPng(), 'scan.png');

describe('teams', () => {
  it('invitations arrive by email; the link works once, for the invited address, within 7 days', async () => {
    const owner = await signup(ta.app);
    const team = (await owner.agent.post('/api/teams').send({ name: 'Acme' }).expect(201)).body.team;
    const invitee = await signup(ta.app);
    const stranger = await signup(ta.app);
    await owner.agent.post(`/api/teams/${team.id}/invitations`).send({ email: await emailOf(invitee.userId) }).expect(201);
    const msg = mail.at(-1)!;
    expect(msg).toMatchObject({ to: await emailOf(invitee.userId), teamName: 'Acme' });
    const token = new URL(msg.acceptUrl).pathname.split('/').pop()!;
    expectProblem(await stranger.agent.post(`/api/invitations/${token}/accept`), 404);
    await invitee.agent.post(`/api/invitations/${token}/accept`).expect(200);
    expectProblem(await invitee.agent.post(`/api/invitations/${token}/accept`), 404);
    // An expired link is refused.
    const late = await signup(ta.app);
    await owner.agent.post(`/api/teams/${team.id}/invitations`).send({ email: await emailOf(late.userId) }).expect(201);
    const lateToken = new URL(mail.at(-1)!.acceptUrl).pathname.split('/').pop()!;
    await ta.t.db('team_invitations').where({ email: await emailOf(late.userId) }).update({ expires_at: new Date(Date.now() - 1000) });
    expectProblem(await late.agent.post(`/api/invitations/${lateToken}/accept`), 404);
    // A member cannot invite; a stranger does not see the team.
    expectProblem(await invitee.agent.post(`/api/teams/${team.id}/invitations`).send({ email: 'x@example.test' }), 403);
    expectProblem(await stranger.agent.get(`/api/teams/${team.id}`), 404);
    const actions = (await ta.t.db('audit_log').where({ target_id: team.id }).pluck('action')).sort();
    expect(actions).toEqual(['team.created', 'team.invitation_accepted', 'team.member_invited', 'team.member_invited']);
  });

  it('an owner buys a pack for the team: the credits land in the pool, not in a wallet', async () => {
    const { owner, team, members } = await teamWith(1);
    expectProblem(await members[0]!.agent.post('/api/payments/checkout').send({ packageId: 'starter', teamId: team.id }), 403);
    const checkout = await owner.agent.post('/api/payments/checkout').send({ packageId: 'starter', teamId: team.id }).expect(201);
    await payOnCheckoutPage(emulator, checkout.body.sessionId, '4242 4242 4242 4242', 'Buyer').expect(303);
    expect(await emulator.emulator.deliverDue()).toBeGreaterThanOrEqual(1);
    expect(await ta.deps.ledger.getAvailable(team.id)).toBe(100_000);
    expect((await owner.agent.get('/api/credits/balance').expect(200)).body.available).toBe(10);
  });

  it('keeps at least one owner; admins cannot touch owners', async () => {
    const { owner, team, members } = await teamWith(1);
    expect(expectProblem(await owner.agent.patch(`/api/teams/${team.id}/members/${owner.userId}`).send({ role: 'member' }), 409)).toMatchObject({
      type: expect.stringMatching(/last-owner$/),
    });
    expectProblem(await owner.agent.delete(`/api/teams/${team.id}/members/${owner.userId}`), 409);
    await owner.agent.patch(`/api/teams/${team.id}/members/${members[0]!.userId}`).send({ role: 'admin' }).expect(204);
    expectProblem(await members[0]!.agent.patch(`/api/teams/${team.id}/members/${owner.userId}`).send({ role: 'member' }), 403);
    expectProblem(await owner.agent.patch(`/api/teams/${team.id}/members/${members[0]!.userId}`).send({ dailyBudget: 1.2345 }), 400);
  });

  it('two members racing on one pool: no member exceeds a budget, the pool never goes below zero', async () => {
    const { owner, team, members } = await teamWith(2);
    await fundAccount(ta.deps.ledger, team.id, 5000); // 5 credits: three 1.5-credit jobs
    for (const m of members) await owner.agent.patch(`/api/teams/${team.id}/members/${m.userId}`).send({ dailyBudget: 3 }).expect(204);
    const results = await Promise.all(members.flatMap((m) => Array.from({ length: 4 }, () => uploadTo(m.agent, team.id))));
    const accepted = results.filter((r) => r.status === 202);
    expect(accepted).toHaveLength(3); // the pool allows 3, the budgets 4
    for (const r of results.filter((x) => x.status !== 202)) expect([402, 403]).toContain(r.status);
    for (const m of members) {
      const spend = await ta.t.db('spend_attributions as s').join('holds as h', 'h.id', 's.hold_id').where({ 's.user_id': m.userId }).sum({ held: 'h.amount' }).first();
      expect(Number(spend!.held)).toBeLessThanOrEqual(3000);
    }
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ available: 500, held: 4500 });
    // Members' own wallets were not touched.
    for (const m of members) expect((await m.agent.get('/api/credits/balance').expect(200)).body).toMatchObject({ available: 10, held: 0 });
  });

  it('two members racing on a deep pool: each gets exactly their budget, the rest is member-budget-exceeded', async () => {
    const { owner, team, members } = await teamWith(2);
    await fundAccount(ta.deps.ledger, team.id, 50_000);
    for (const m of members) await owner.agent.patch(`/api/teams/${team.id}/members/${m.userId}`).send({ dailyBudget: 3, monthlyBudget: 100 }).expect(204);
    const byMember = await Promise.all(members.map((m) => Promise.all(Array.from({ length: 5 }, () => uploadTo(m.agent, team.id)))));
    for (const results of byMember) {
      expect(results.filter((r) => r.status === 202)).toHaveLength(2);
      for (const r of results.filter((x) => x.status !== 202)) expect(expectProblem(r, 403)).toMatchObject({ type: expect.stringMatching(/member-budget-exceeded$/) });
    }
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ available: 44_000, held: 6000 });
  });

  it('over budget is 403 member-budget-exceeded with budget, spent, held and reset time', async () => {
    const { owner, team, members } = await teamWith(1);
    const m = members[0]!;
    await fundAccount(ta.deps.ledger, team.id, 100_000);
    await owner.agent.patch(`/api/teams/${team.id}/members/${m.userId}`).send({ dailyBudget: 5 }).expect(204);
    for (let i = 0; i < 3; i++) await (await uploadTo(m.agent, team.id)).status;
    const res = await uploadTo(m.agent, team.id);
    const body = expectProblem(res, 403);
    const tomorrow = new Date();
    tomorrow.setUTCHours(24, 0, 0, 0);
    expect(body).toMatchObject({ type: expect.stringMatching(/member-budget-exceeded$/), budget: 'daily', limit: 5, spent: 0, held: 4.5, resetsAt: tomorrow.toISOString() });
    // the refusal is in the audit log (issue 19: budget refusals)
    const [refused] = await ta.t.db('audit_log').where({ action: 'credits.refused', actor_user_id: m.userId });
    expect(refused.details).toMatchObject({ code: 'member-budget-exceeded', budget: 'daily', limit: 5, path: '/api/tasks' });
    await owner.agent.patch(`/api/teams/${team.id}/members/${m.userId}`).send({ perJobBudget: 1 }).expect(204);
    expect(expectProblem(await uploadTo(m.agent, team.id), 403)).toMatchObject({ budget: 'per-job' });
    const members_ = (await owner.agent.get(`/api/teams/${team.id}`).expect(200)).body.members;
    expect(members_.find((x: { userId: string }) => x.userId === m.userId)).toMatchObject({ budgets: { daily: 5, perJob: 1 }, held: { today: 4.5 } });
  });

  it("a removed member's session and team key are refused at once; history stays and filters by member", async () => {
    const { owner, team, members } = await teamWith(2);
    const [m, other] = members as [{ agent: Agent; userId: string }, { agent: Agent; userId: string }];
    await fundAccount(ta.deps.ledger, team.id, 20_000);
    const key = (await m.agent.post('/api/keys').send({ name: 'ci', teamId: team.id, scopes: ['tasks:write', 'tasks:read'] }).expect(201)).body.secret as string;
    await request(ta.app).post('/api/tasks').set('Authorization', `Bearer ${key}`).attach('file', await tinyPng(), 'k.png').expect(202);
    await uploadTo(m.agent, team.id).then((r) => expect(r.status).toBe(202));
    await uploadTo(other.agent, team.id).then((r) => expect(r.status).toBe(202));
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ held: 4500 });

    // A team key with credits:read would read the pool; this one lacks the scope.
    expectProblem(await request(ta.app).get('/api/credits/balance').set('Authorization', `Bearer ${key}`), 403);
    const reader = (await owner.agent.post('/api/keys').send({ name: 'dash', teamId: team.id, scopes: ['credits:read'] }).expect(201)).body.secret as string;
    expect((await request(ta.app).get('/api/credits/balance').set('Authorization', `Bearer ${reader}`).expect(200)).body).toMatchObject({ available: 15.5, held: 4.5 });

    await owner.agent.delete(`/api/teams/${team.id}/members/${m.userId}`).expect(204);
    expectProblem(await uploadTo(m.agent, team.id), 403);
    expectProblem(await request(ta.app).post('/api/tasks').set('Authorization', `Bearer ${key}`).attach('file', await tinyPng(), 'k.png'), 401);
    expectProblem(await m.agent.get(`/api/teams/${team.id}`), 404);
    // Their holds are still the team's, in the pool's history, attributed to them.
    for (const h of await ta.t.db('spend_attributions').where({ team_id: team.id })) await ta.deps.ledger.post({ holdId: h.hold_id, millicredits: 1500, actor: 'system' });
    const mine = (await owner.agent.get(`/api/teams/${team.id}/transfers?member=${m.userId}`).expect(200)).body.transfers;
    expect(mine.map((x: { amount: number }) => x.amount)).toEqual([-1.5, -1.5]);
    expect(mine.some((x: { keyName: string | null }) => x.keyName === 'ci')).toBe(true);
    const all = (await owner.agent.get(`/api/teams/${team.id}/transfers`).expect(200)).body.transfers;
    expect(all).toHaveLength(4);
  });

  it('a member moves their own credits into the pool; the pages render for owner and member', async () => {
    const { owner, team, members } = await teamWith(1);
    const m = members[0]!;
    // Only purchased credits move: the 10 sign-up credits do not.
    expect(expectProblem(await m.agent.post(`/api/teams/${team.id}/contributions`).send({ credits: 1 }), 402)).toMatchObject({ available: 0 });
    const in5days = new Date(Date.now() + 5 * 86_400_000);
    await ta.deps.ledger.grant({ transferId: `buy:${m.userId}:1`, userId: m.userId, millicredits: 3000, kind: 'purchase', actor: 'stripe', expiresAt: in5days });
    await ta.deps.ledger.grant({ transferId: `buy:${m.userId}:2`, userId: m.userId, millicredits: 5000, kind: 'purchase', actor: 'stripe' });
    const res = await m.agent.post(`/api/teams/${team.id}/contributions`).set('Idempotency-Key', 'c-1').send({ credits: 4 }).expect(201);
    expect(res.body.contribution).toMatchObject({ credits: 4, parts: [{ credits: 3, expiresAt: in5days.toISOString() }, { credits: 1, expiresAt: null }] });
    await m.agent.post(`/api/teams/${team.id}/contributions`).set('Idempotency-Key', 'c-1').send({ credits: 4 }).expect(201);
    expect(await ta.deps.ledger.getAvailable(team.id)).toBe(4000);
    expect((await m.agent.get('/api/credits/balance').expect(200)).body).toMatchObject({ available: 14 });
    expect(expectProblem(await m.agent.post(`/api/teams/${team.id}/contributions`).send({ credits: 5 }), 402)).toMatchObject({ available: 4 });
    const history = (await owner.agent.get(`/api/teams/${team.id}/transfers?member=${m.userId}`).expect(200)).body.transfers;
    expect(history.map((x: { amount: number; kind: string }) => [x.kind, x.amount])).toEqual([['contribution', 1], ['contribution', 3]]);
    const page = await owner.agent.get(`/teams/${team.id}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Acme');
    expect(page.text).toContain('Contribution to Acme');
    expect(page.text).toContain('Send invitation');
    const visible = page.text.replace(/<[^>]*>/g, ' ');
    expect(visible).not.toContain(team.id);
    expect(visible).not.toContain(members[0]!.userId);
    const memberPage = await members[0]!.agent.get(`/teams/${team.id}`).set('Accept', 'text/html').expect(200);
    expect(memberPage.text).not.toContain('Send invitation');
    const keys = await owner.agent.get('/account/keys').set('Accept', 'text/html').expect(200);
    expect(keys.text).toContain('Create a key');
  });

  it('the /tasks form offers the team pool; the wallet is kept from upload to confirm, and an over-budget job is refused on the page', async () => {
    const { owner, team, members } = await teamWith(1);
    const m = members[0]!;
    await fundAccount(ta.deps.ledger, team.id, 10_000);
    await owner.agent.patch(`/api/teams/${team.id}/members/${m.userId}`).send({ dailyBudget: 2 }).expect(204);
    const page = await m.agent.get('/tasks').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Team Acme (within your budget)');
    const csrf = csrfFrom(page.text);
    const stageAndConfirm = async (name: string) => {
      const staged = await m.agent.post('/tasks/uploads').set('Accept', 'text/html').field('_csrf', csrf).field('wallet', `team:${team.id}`).attach('file', await tinyPng(name), `${name}.png`).expect(303);
      const confirmPage = await m.agent.get(String(staged.headers.location).replace(/#.*/, '')).set('Accept', 'text/html').expect(200);
      // The confirm step names the pool that pays, not the member's own balance.
      expect(confirmPage.text).toMatch(/data-staged-wallet>Team Acme \([\d.]+ credits\), within your budget/);
      const ids = [...confirmPage.text.matchAll(/name="uploadId" value="([^"]+)"/g)].map((x) => x[1]!);
      expect(ids).toHaveLength(1);
      const res = await m.agent.post('/tasks/confirm').set('Accept', 'text/html').type('form').send(`_csrf=${encodeURIComponent(csrfFrom(confirmPage.text))}&uploadId=${ids[0]}`).expect(303);
      return { location: String(res.headers.location), id: ids[0]! };
    };
    const first = await stageAndConfirm('one');
    expect(first.location).toBe(`/tasks/${first.id}`);
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ held: 1500 });
    const refused = await stageAndConfirm('two');
    expect(refused.location).toMatch(/^\/tasks/);
    const after = await m.agent.get(refused.location.replace(/#.*/, '')).set('Accept', 'text/html').expect(200);
    expect(after.text).toContain('daily budget');
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ held: 1500 });
    expect((await m.agent.get('/api/credits/balance').expect(200)).body).toMatchObject({ available: 10, held: 0 });
    // A pool the user is not in keeps nothing.
    const stranger = await signup(ta.app);
    const sPage = await stranger.agent.get('/tasks').set('Accept', 'text/html').expect(200);
    expect(sPage.text).not.toContain('Pay from');
    const sRes = await stranger.agent.post('/tasks/uploads').set('Accept', 'text/html').field('_csrf', csrfFrom(sPage.text)).field('wallet', `team:${team.id}`).attach('file', await tinyPng('s'), 's.png').expect(303);
    expect(sRes.headers.location).toBe('/tasks#upload');
    expect(await ta.t.db('task_uploads').where({ user_id: stranger.userId }).count({ n: '*' }).first()).toMatchObject({ n: 0 });
  });

  it('the API keeps the wallet from stage to confirm: the pool pays within the budget; a team key stages for its pool', async () => {
    const { owner, team, members } = await teamWith(1);
    const m = members[0]!;
    await fundAccount(ta.deps.ledger, team.id, 10_000);
    await owner.agent.patch(`/api/teams/${team.id}/members/${m.userId}`).send({ dailyBudget: 3 }).expect(204);
    const staged = await m.agent.post('/api/tasks/uploads').field('wallet', `team:${team.id}`).attach('file', await tinyPng('a'), 'a.png').expect(201);
    expect(staged.body.upload).toMatchObject({ wallet: `team:${team.id}`, credits: 1.5 });
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ held: 0 });
    await m.agent.post(`/api/tasks/uploads/${staged.body.upload.id}/confirm`).expect(202);
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ available: 8500, held: 1500 });
    expect(await ta.t.db('spend_attributions').where({ hold_id: `task:${staged.body.upload.id}` }).first()).toMatchObject({ team_id: team.id, user_id: m.userId, api_key_id: null });

    // A team key: the upload is the pool's without a wallet field; confirming with the key attributes it.
    const { secret, key } = (await m.agent.post('/api/keys').send({ name: 'ci', teamId: team.id, scopes: ['tasks:write', 'tasks:read'] }).expect(201)).body;
    const viaKey = await request(ta.app).post('/api/tasks/uploads').set('Authorization', `Bearer ${secret}`).attach('file', await tinyPng('b'), 'b.png').expect(201);
    expect(viaKey.body.upload.wallet).toBe(`team:${team.id}`);
    await request(ta.app).post(`/api/tasks/uploads/${viaKey.body.upload.id}/confirm`).set('Authorization', `Bearer ${secret}`).expect(202);
    expect(await ta.t.db('spend_attributions').where({ hold_id: `task:${viaKey.body.upload.id}` }).first()).toMatchObject({ team_id: team.id, api_key_id: key.id });

    // Past the budget: 403 at confirm, nothing held, the upload stays for later.
    const third = await m.agent.post('/api/tasks/uploads').field('wallet', `team:${team.id}`).attach('file', await tinyPng('c'), 'c.png').expect(201);
    const refused = expectProblem(await m.agent.post(`/api/tasks/uploads/${third.body.upload.id}/confirm`), 403);
    expect(refused).toMatchObject({ type: expect.stringMatching(/member-budget-exceeded$/), budget: 'daily', limit: 3, held: 3 });
    expect(await ta.t.db('task_uploads').where({ id: third.body.upload.id }).first()).toBeTruthy();
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ held: 3000 });

    // A personal upload cannot be confirmed with a team key (it spends only from its pool).
    const personal = await m.agent.post('/api/tasks/uploads').field('wallet', 'personal').attach('file', await tinyPng('d'), 'd.png').expect(201);
    expect(personal.body.upload.wallet).toBe('personal');
    const wrong = expectProblem(await request(ta.app).post(`/api/tasks/uploads/${personal.body.upload.id}/confirm`).set('Authorization', `Bearer ${secret}`), 403);
    expect(wrong).toMatchObject({ type: expect.stringMatching(/wallet_not_allowed_for_key$/) });
    // A stranger cannot stage for the pool; a malformed wallet names the field.
    const stranger = await signup(ta.app);
    expectProblem(await stranger.agent.post('/api/tasks/uploads').field('wallet', `team:${team.id}`).attach('file', await tinyPng('e'), 'e.png'), 403);
    const bad = expectProblem(await m.agent.post('/api/tasks/uploads').field('wallet', 'team:nope').attach('file', await tinyPng('f'), 'f.png'), 400);
    expect(JSON.stringify(bad)).toContain('body.wallet');
    expect(await ta.t.db('task_uploads').where({ user_id: stranger.userId }).count({ n: '*' }).first()).toMatchObject({ n: 0 });
  });

  it("a retried team task charges the team's pool, not the member's own wallet, within the budget", async () => {
    const { owner, team, members } = await teamWith(1);
    const m = members[0]!;
    await fundAccount(ta.deps.ledger, team.id, 10_000);
    await owner.agent.patch(`/api/teams/${team.id}/members/${m.userId}`).send({ dailyBudget: 3 }).expect(204);
    const id = (await uploadTo(m.agent, team.id).then((r) => (expect(r.status).toBe(202), r))).body.task.id as string;
    // The job fails: its hold is voided (as the worker does), the task is failed.
    await ta.t.db.transaction(async (trx) => {
      await ta.deps.ledger.void({ holdId: `task:${id}`, actor: 'system' }, trx);
      await trx('tasks').where({ id }).update({ status: 'failed', charged_millicredits: 0, error_code: 'ocr_failed', error_detail: 'x', completed_at: trx.fn.now() });
    });
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ available: 10_000, held: 0 });
    await m.agent.post(`/api/tasks/${id}/retry`).expect(202);
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ available: 8500, held: 1500 });
    expect((await m.agent.get('/api/credits/balance').expect(200)).body).toMatchObject({ available: 10, held: 0 });
    const retryHold = (await ta.t.db('tasks').where({ id }).first('hold_id')).hold_id as string;
    expect(await ta.t.db('spend_attributions').where({ hold_id: retryHold }).first()).toMatchObject({ team_id: team.id, user_id: m.userId });
    // The retry counts against the budget like any job: a second failure's retry past it is refused.
    await uploadTo(m.agent, team.id).then((r) => expect(r.status).toBe(202));
    await ta.t.db.transaction(async (trx) => {
      await ta.deps.ledger.void({ holdId: retryHold, actor: 'system' }, trx);
      await trx('tasks').where({ id }).update({ status: 'failed', charged_millicredits: 0, error_code: 'ocr_failed', error_detail: 'x', completed_at: trx.fn.now() });
    });
    await owner.agent.patch(`/api/teams/${team.id}/members/${m.userId}`).send({ dailyBudget: 2 }).expect(204);
    expect(expectProblem(await m.agent.post(`/api/tasks/${id}/retry`), 403)).toMatchObject({ type: expect.stringMatching(/member-budget-exceeded$/) });
    // A removed member cannot retry on the pool either.
    await owner.agent.delete(`/api/teams/${team.id}/members/${m.userId}`).expect(204);
    expect(expectProblem(await m.agent.post(`/api/tasks/${id}/retry`), 403)).toMatchObject({ type: expect.stringMatching(/not_a_team_member$/) });
  });

  it('the team page charts usage by member (Chart.js) with the same figures in a table; the header links to Teams', async () => {
    const { owner, team, members } = await teamWith(2);
    const [a, b] = members as [{ agent: Agent; userId: string }, { agent: Agent; userId: string }];
    await fundAccount(ta.deps.ledger, team.id, 20_000);
    const empty = await owner.agent.get(`/teams/${team.id}`).set('Accept', 'text/html').expect(200);
    expect(empty.text).toContain('data-testid="usage-empty"');
    expect(empty.text).toMatch(/<a href="\/teams"[^>]*>Teams<\/a>/);
    for (const [m, n] of [[a, 2], [b, 1]] as const) {
      for (let i = 0; i < n; i++) {
        const id = (await uploadTo(m.agent, team.id).then((r) => (expect(r.status).toBe(202), r))).body.task.id as string;
        await ta.deps.ledger.post({ holdId: `task:${id}`, millicredits: 1500, actor: 'system' });
      }
    }
    const usage = await ta.deps.teams.usageByMember(team.id, owner.userId, { days: 14 });
    expect(usage.days).toHaveLength(14);
    expect(usage.members.map((m) => [m.userId, m.total, m.perDay.at(-1)])).toEqual([
      [a.userId, 3000, 3000],
      [b.userId, 1500, 1500],
    ]);
    const page = await owner.agent.get(`/teams/${team.id}`).set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('<script src="/static/chart/chart.umd.min.js" defer></script>');
    expect(page.text).toMatch(/<canvas id="usage-chart" role="img" aria-label="[^"]+" data-usage="/);
    const data = JSON.parse(/data-usage="([^"]+)"/.exec(page.text)![1]!.replace(/&#34;/g, '"').replace(/&quot;/g, '"').replace(/&amp;/g, '&'));
    expect(data.series.map((s: { credits: number[] }) => s.credits.at(-1))).toEqual([3, 1.5]);
    const table = /data-testid="usage-table">([\s\S]*?)<\/table>/.exec(page.text)![1]!.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
    expect(table).toMatch(/Day Member Credits \d+ \w+ \d{4} Task User 3 \d+ \w+ \d{4} Task User 1\.5/);
    expect(table).not.toContain(a.userId);
    await request(ta.app).get('/static/chart/chart.umd.min.js').expect(200);
    await request(ta.app).get('/static/team-usage.js').expect(200);
  });

  it("spend caps (issue 14) and member budgets both hold: a key on the user's wallet meets their cap; the team's pool meets the member budget", async () => {
    const { owner, team, members } = await teamWith(1);
    const m = members[0]!;
    await fundAccount(ta.deps.ledger, team.id, 20_000);
    await owner.agent.patch(`/api/teams/${team.id}/members/${m.userId}`).send({ dailyBudget: 3 }).expect(204);
    await m.agent.put('/api/credits/settings').send({ dailyCap: 2 }).expect(200);
    const { secret } = (await m.agent.post('/api/keys').send({ name: 'own', scopes: ['tasks:write'] }).expect(201)).body;
    const png = await tinyPng('cap');
    const viaKey = () => request(ta.app).post('/api/tasks').set('Authorization', `Bearer ${secret}`).attach('file', png, 'k.png');
    expect((await viaKey()).status).toBe(202);
    expect(expectProblem(await viaKey(), 403)).toMatchObject({ type: expect.stringMatching(/spend-cap-exceeded$/), cap: 'daily' });
    // The pool is the team's money: the member's personal cap does not apply there, the budget does.
    expect((await uploadTo(m.agent, team.id)).status).toBe(202);
    expect((await uploadTo(m.agent, team.id)).status).toBe(202);
    expect(expectProblem(await uploadTo(m.agent, team.id), 403)).toMatchObject({ type: expect.stringMatching(/member-budget-exceeded$/) });
    expect(await ta.deps.ledger.getBalance(team.id)).toMatchObject({ held: 3000 });
    expect((await m.agent.get('/api/credits/balance').expect(200)).body).toMatchObject({ held: 1.5 });
  });
});
