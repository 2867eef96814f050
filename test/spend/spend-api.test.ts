import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { csrfFrom, signedInAdmin } from '../auth/auth-helpers.ts';
import { booksViolations } from '../helpers/factories.ts';
import { balanceOf, buildTasksApp, expectProblem, fixture, signup, tinyPng, upload, type TasksTestApp } from '../tasks/tasks-helpers.ts';

// Spend caps through the HTTP API and pages: settings, the 403 at upload, hard caps, alerts, audit.
let ta: TasksTestApp;
beforeAll(async () => {
  ta = await buildTasksApp({ worker: false });
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => ta?.close());

describe('GET/PUT /api/credits/settings', () => {
  it('starts with no caps, UTC and alerts at 50/80/100 %', async () => {
    const { agent } = await signup(ta.app);
    const res = await agent.get('/api/credits/settings').expect(200);
    expect(res.body).toMatchObject({
      timeZone: 'UTC',
      alertThresholds: [50, 80, 100],
      caps: { daily: { limit: null, spent: 0, held: 0, remaining: null }, monthly: { limit: null }, perJob: { limit: null } },
      alerts: [],
    });
  });

  it('refuses bad values with a 400 naming each field, and changes nothing', async () => {
    const { agent } = await signup(ta.app);
    const res = await agent
      .put('/api/credits/settings')
      .send({ dailyCap: -1, monthlyCap: 1.2345, timeZone: 'Mars/Olympus_Mons', alertThresholds: [0, 150], colour: 'red' });
    const body = expectProblem(res, 400);
    const fields = (body.errors as Array<{ field: string }>).map((e) => e.field).sort();
    expect(fields).toEqual(expect.arrayContaining(['body.dailyCap', 'body.monthlyCap', 'body.timeZone']));
    expect(fields.some((f) => f.startsWith('body.alertThresholds'))).toBe(true);
    expect((await agent.get('/api/credits/settings').expect(200)).body.caps.daily.limit).toBeNull();
  });

  it('needs a session', async () => {
    const { default: request } = await import('supertest');
    expectProblem(await request(ta.app).get('/api/credits/settings'), 401);
  });
});

describe('caps at upload', () => {
  it('the per-job maximum refuses a big job at upload with 403 spend-cap-exceeded: nothing held, the refusal audited', async () => {
    const { agent, userId } = await signup(ta.app);
    await agent.put('/api/credits/settings').send({ perJobMax: 3 }).expect(200);
    const body = expectProblem(await upload(agent, fixture('multipage.pdf'), 'contract.pdf'), 403);
    expect(body.type).toMatch(/spend-cap-exceeded$/);
    expect(body).toMatchObject({ cap: 'per_job', limit: 3, spent: 0, held: 0, resetsAt: null });
    expect(body.detail).toMatch(/per-job maximum of 3 credits/);
    expect(await balanceOf(agent)).toEqual({ available: 10, held: 0 });
    expect(await ta.t.db('tasks').where({ user_id: userId }).select('id')).toEqual([]);
    const audit = await ta.t.db('audit_log').where({ action: 'spend_cap.job_blocked', actor_user_id: userId }).select('details');
    expect(audit).toHaveLength(1);
    expect(audit[0].details).toMatchObject({ cap: 'per_job', limit: 3, required: 4, job: 'ocr' });
  });

  it('a daily cap of 3 credits lets two 1.5-credit uploads through and refuses the third; alerts at 50/80/100 % recorded once and delivered', async () => {
    const { agent, userId } = await signup(ta.app);
    await agent.put('/api/credits/settings').send({ dailyCap: 3 }).expect(200);
    await upload(agent, await tinyPng('a'), 'a.png').expect(202);
    await upload(agent, await tinyPng('b'), 'b.png').expect(202);
    const body = expectProblem(await upload(agent, await tinyPng('c'), 'c.png'), 403);
    expect(body).toMatchObject({ cap: 'daily', limit: 3, spent: 0, held: 3 });
    expect(Date.parse(body.resetsAt as string)).toBe(Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1));
    expect(body.detail).toMatch(/your daily cap of 3 credits has 0 credits of room left \(0 spent, 3 held\)\. It resets on \d+ \w+ \d{4}, 00:00 UTC\./);
    expect(await balanceOf(agent)).toEqual({ available: 7, held: 3 });
    // The page shows the refusal with a way to change the limits.
    const { csrfFrom } = await import('../auth/auth-helpers.ts');
    const form = await agent.get('/tasks').set('Accept', 'text/html').expect(200);
    const staged = await agent.post('/tasks/uploads').set('Accept', 'text/html').field('_csrf', csrfFrom(form.text)).attach('file', await tinyPng('d'), 'd.png').expect(303);
    const confirmUrl = String(staged.headers.location).replace(/#.*/, '');
    const confirmPage = await agent.get(confirmUrl).set('Accept', 'text/html').expect(200);
    // Beside the estimate: the room left under the daily cap.
    expect(confirmPage.text).toMatch(/Today:<\/strong> 0 of 3 credits left/);
    const uploadId = /name="uploadId" value="([^"]+)"/.exec(confirmPage.text)![1]!;
    const refused = await agent
      .post('/tasks/confirm')
      .set('Accept', 'text/html')
      .type('form')
      .send(`_csrf=${encodeURIComponent(csrfFrom(confirmPage.text))}&uploadId=${uploadId}`)
      .expect(303);
    // Back to the confirm step (the upload waits) with the reason and a link to the limits.
    expect(refused.headers.location).toBe(`/tasks?uploads=${uploadId}#confirm`);
    const page = await agent.get(confirmUrl).set('Accept', 'text/html').expect(200);
    expect(page.text).toMatch(/Not started: This needs 1.5 credits, but your daily cap of 3 credits/);
    expect(page.text).toContain('<a href="/account/settings/credits">Change your spending limits</a>');
    // The refusal at confirm is audited like one at the API.
    expect(await ta.t.db('audit_log').where({ action: 'spend_cap.job_blocked' }).whereRaw("details->>'job' = 'ocr'").andWhereRaw("details->>'name' = 'd.png'").select('id')).toHaveLength(1);
    const settings = (await agent.get('/api/credits/settings').expect(200)).body;
    expect(settings.caps.daily).toMatchObject({ limit: 3, held: 3, remaining: 0 });
    expect(settings.alerts.map((a: { threshold: number }) => a.threshold).sort((x: number, y: number) => x - y)).toEqual([50, 80, 100]);
    await ta.deps.spend.deliverAlerts();
    expect(await ta.t.db('spend_cap_alerts').whereNull('notified_at').select('id')).toEqual([]);
    // Delivered through the notification pipeline: the notification centre and the email outbox, once each.
    const inbox = await ta.t.db('notifications').where({ user_id: userId, type: 'spend_cap.reached' }).pluck('title');
    expect(inbox.sort()).toEqual(['50% of your daily spending cap used', '80% of your daily spending cap used', 'Your daily spending cap is reached']);
    expect(await ta.t.db('email_outbox').where({ user_id: userId, type: 'spend_cap_reached' }).count<{ count: number }[]>('* as count')).toEqual([{ count: 3 }]);
    await ta.deps.spend.deliverAlerts();
    expect(await ta.t.db('notifications').where({ user_id: userId, type: 'spend_cap.reached' }).select('id')).toHaveLength(3);
  });
});

describe('admin hard caps', () => {
  it('PUT /api/admin/users/:id/limits sets a hard cap the user can lower but not raise', async () => {
    const { agent, userId } = await signup(ta.app);
    const { agent: admin } = await signedInAdmin(ta.app, ta.t.db);
    const set = await admin.put(`/api/admin/users/${userId}/limits`).send({ dailyCap: 5, perJobMax: 2 }).expect(200);
    expect(set.body.caps.daily).toMatchObject({ limit: 5, hardCap: 5, yours: null });

    const raise = expectProblem(await agent.put('/api/credits/settings').send({ dailyCap: 6 }), 400);
    expect(raise.errors).toEqual([{ field: 'body.dailyCap', message: expect.stringMatching(/at most 5 credits/) }]);
    await agent.put('/api/credits/settings').send({ dailyCap: null, perJobMax: null }).expect(200);
    const after = (await agent.get('/api/credits/settings').expect(200)).body;
    expect(after.caps.daily.limit).toBe(5); // removing your own cap leaves the hard cap
    expect(after.caps.perJob.limit).toBe(2);
    const lowered = (await agent.put('/api/credits/settings').send({ dailyCap: 4 }).expect(200)).body;
    expect(lowered.caps.daily).toMatchObject({ limit: 4, yours: 4, hardCap: 5 });
    expect(expectProblem(await upload(agent, fixture('multipage.pdf'), 'big.pdf'), 403)).toMatchObject({ cap: 'per_job', limit: 2 });
    await upload(agent, await tinyPng('x'), 'x.png').expect(202);
  });

  it('is for admins only; an unknown user is a 404; the change is audited', async () => {
    const { agent, userId } = await signup(ta.app);
    expectProblem(await agent.put(`/api/admin/users/${userId}/limits`).send({ dailyCap: 100 }), 403);
    const { agent: admin, user } = await signedInAdmin(ta.app, ta.t.db);
    expectProblem(await admin.put('/api/admin/users/00000000-0000-4000-8000-000000000000/limits').send({ dailyCap: 1 }), 404);
    await admin.put(`/api/admin/users/${userId}/limits`).send({ monthlyCap: 100 }).expect(200);
    const rows = await ta.t.db('audit_log').where({ action: 'spend.hard_caps_set', actor_user_id: user.id }).select('details');
    expect(rows.map((r) => r.details)).toEqual([{ monthlyCap: 100 }]);
  });
});

describe('pages', () => {
  it('/account/settings/credits saves the form, shows the room left, and shows a hard-cap refusal beside its field', async () => {
    const { agent, userId } = await signup(ta.app);
    const { agent: admin } = await signedInAdmin(ta.app, ta.t.db);
    await admin.put(`/api/admin/users/${userId}/limits`).send({ monthlyCap: 50 }).expect(200);
    const page = await agent.get('/account/settings/credits').set('Accept', 'text/html').expect(200);
    expect(page.text).toContain('Spending limits');
    expect(page.text).toContain('Your administrator set a limit of 50 credits');
    const csrf = csrfFrom(page.text);
    await agent
      .post('/account/settings/credits')
      .type('form')
      .send({ _csrf: csrf, dailyCap: '5', monthlyCap: '', perJobMax: '', timeZone: 'Europe/Berlin', alertThresholds: '50, 90' })
      .expect(303);
    const settings = (await agent.get('/api/credits/settings').expect(200)).body;
    expect(settings).toMatchObject({ timeZone: 'Europe/Berlin', alertThresholds: [50, 90], caps: { daily: { limit: 5 }, monthly: { limit: 50 } } });
    const bad = await agent
      .post('/account/settings/credits')
      .type('form')
      .send({ _csrf: csrf, dailyCap: '5', monthlyCap: '60', perJobMax: '', timeZone: 'Europe/Berlin', alertThresholds: '50' })
      .expect(400);
    expect(bad.text).toMatch(/Monthly cap must be at most 50 credits/);
    const tasks = await agent.get('/tasks').set('Accept', 'text/html').expect(200);
    expect(tasks.text).toMatch(/Today:<\/strong> 5 of 5 credits left/);
  });
});
