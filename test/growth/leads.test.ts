import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { booksViolations } from '../helpers/factories.ts';
import { csrfFrom, GOOD_PASSWORD, uniqueEmail } from '../auth/auth-helpers.ts';
import { buildTasksApp, tinyPng, upload, waitForTask, type TasksTestApp } from '../tasks/tasks-helpers.ts';

let ta: TasksTestApp;
beforeAll(async () => {
  ta = await buildTasksApp({ env: { LEAD_TRIAL_CREDITS: '3', LEAD_TRIAL_DAYS: '7', LEAD_MAX_PER_IP_PER_DAY: '5' } });
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => ta?.close());

const available = async (userId: string) => (await ta.deps.ledger.getBalance(userId)).available;

/** A visitor who starts the trial on /try; returns their agent, lead id and the lead cookie. */
async function visitor() {
  const agent = request.agent(ta.app).set('Accept', 'text/html');
  const page = await agent.get('/try').expect(200);
  const res = await agent.post('/try').type('form').send({ _csrf: csrfFrom(page.text) }).expect(303);
  expect(res.headers.location).toBe('/tasks');
  const cookie = ([] as string[]).concat(res.headers['set-cookie'] ?? []).find((c) => c.startsWith('tally_lead='))!;
  expect(cookie).toMatch(/HttpOnly/i);
  const lead = await ta.t.db('leads').orderBy('created_at', 'desc').first();
  return { agent, leadId: lead.id as string, cookie: cookie.split(';')[0]! };
}

describe('trial credits for visitors', () => {
  it('a visitor runs a job on /tasks with trial credits, signs up, and finds the task and the credits left', async () => {
    const { agent, leadId } = await visitor();
    const tasksPage = await agent.get('/tasks').expect(200);
    expect(tasksPage.text).toContain('trial credits');
    const lots = (await ta.deps.ledger.getBalance(leadId)).lots;
    expect(lots).toHaveLength(1);
    expect(lots[0]).toMatchObject({ source: 'trial', amount: 3000 });
    expect((lots[0]!.expiresAt!.getTime() - Date.now()) / 86_400_000).toBeGreaterThan(6.9);

    const queued = await upload(agent.set('Accept', 'application/json'), await tinyPng('lead'), 'receipt.png').expect(202);
    const task = await waitForTask(agent, queued.body.task.id);
    expect(task.status).toBe('completed');
    const left = await available(leadId);
    expect(left).toBeGreaterThan(0);
    expect(left).toBeLessThan(3000);
    // The lead is a visitor on the tasks paths (and its balance) only.
    expect((await agent.get('/api/credits/balance').expect(200)).body.available).toBe(left / 1000);
    expect((await agent.get('/api/credits/transfers')).status).toBe(401);
    expect((await agent.get('/account').set('Accept', 'text/html')).status).toBe(303);

    const signed = await agent.post('/api/auth/signup').send({ email: uniqueEmail('lead'), password: GOOD_PASSWORD, name: 'Lena Lead' }).expect(201);
    const userId = signed.body.user.id as string;
    expect(await available(userId)).toBe(10_000 + left);
    expect(await available(leadId)).toBe(0);
    const trial = (await ta.deps.ledger.getBalance(userId)).lots.find((l) => l.source === 'trial')!;
    expect(trial.expiresAt!.getTime()).toBe(lots[0]!.expiresAt!.getTime());
    const mine = await agent.get('/api/tasks').expect(200);
    expect(mine.body.tasks.map((t: { id: string }) => t.id)).toEqual([queued.body.task.id]);
    expect(mine.body.tasks[0].fileName).toBe('receipt.png');
  });

  it('when two sign-ups race with one lead cookie, exactly one gets the trial credits and the tasks', async () => {
    const { cookie, leadId } = await visitor();
    const signups = await Promise.all(
      [1, 2].map(() => request(ta.app).post('/api/auth/signup').set('Cookie', cookie).send({ email: uniqueEmail('race'), password: GOOD_PASSWORD, name: 'Racer' })),
    );
    expect(signups.map((r) => r.status)).toEqual([201, 201]);
    const balances = await Promise.all(signups.map((r) => available(r.body.user.id)));
    expect(balances.sort()).toEqual([10_000, 13_000]);
    const claims = await ta.t.db('transfers').where({ id: `lead_claim:${leadId}` });
    expect(claims).toHaveLength(1);
    expect((await ta.t.db('leads').where({ id: leadId }).first()).claimed_by).toBeTruthy();
  });

  it('a claimed or forged lead cookie opens nothing: /tasks sends the visitor to log in', async () => {
    const { cookie } = await visitor();
    await request(ta.app).post('/api/auth/signup').set('Cookie', cookie).send({ email: uniqueEmail('once'), password: GOOD_PASSWORD, name: 'Once' }).expect(201);
    const after = await request(ta.app).get('/tasks').set('Cookie', cookie).set('Accept', 'text/html');
    expect(after.status).toBe(303);
    expect(after.headers.location).toBe('/login?next=%2Ftasks');
    const forged = cookie.replace(/=([0-9a-f-]{36})\./, '=00000000-0000-4000-8000-000000000000.');
    expect((await request(ta.app).get('/api/tasks').set('Cookie', forged)).status).toBe(401);
  });

  it('opens at most LEAD_MAX_PER_IP_PER_DAY leads per IP per day, also when opened at once', async () => {
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => ta.deps.growth.leads.open('192.0.2.44')));
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(5);
    for (const r of results) if (r.status === 'rejected') expect((r.reason as { status: number }).status).toBe(429);
    expect((await ta.deps.growth.leads.open('192.0.2.45')).millicredits).toBe(3000);
  });
});
