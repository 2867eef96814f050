import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { csrfFrom, signedInUser } from '../auth/auth-helpers.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

let ta: TestApp;

beforeAll(async () => {
  ta = await buildTestApp();
});
afterAll(async () => {
  await ta.close();
});

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** Buys 100 credits and spends down to 15: one low-balance notification. */
async function lowBalanceFor(userId: string) {
  await ta.deps.ledger.grant({ transferId: `purchase:${crypto.randomUUID()}`, userId, millicredits: 100_000, kind: 'purchase', actor: 'stripe' });
  await ta.deps.ledger.debit({ transferId: `spend:${crypto.randomUUID()}`, userId, millicredits: 95_000, kind: 'usage', actor: 'test' });
}

describe('notification centre API', () => {
  it('lists newest first with the unread count, filters unread, marks one and all read; 404 for another user', async () => {
    const { agent, user } = await signedInUser(ta.app);
    await lowBalanceFor(user.id);
    await ta.deps.notifications.notifier.notify(ta.t.db, { userId: user.id, inbox: { type: 'test', title: 'Second', body: 'Newer one' } });
    let res = await agent.get('/api/notifications').expect(200);
    expect(res.body.unreadCount).toBe(2);
    expect(res.body.notifications.map((n: { title: string }) => n.title)).toEqual(['Second', 'Your balance is low']);
    expect(res.body.notifications[1]).toMatchObject({ type: 'balance.low', read: false, link: '/pricing' });
    const [second] = res.body.notifications;

    const { agent: other } = await signedInUser(ta.app);
    await other.post(`/api/notifications/${second.id}/read`).send({}).expect(404);
    expect((await other.get('/api/notifications').expect(200)).body.notifications).toEqual([]);

    const read = await agent.post(`/api/notifications/${second.id}/read`).send({}).expect(200);
    expect(read.body).toMatchObject({ notification: { id: second.id, read: true }, unreadCount: 1 });
    res = await agent.get('/api/notifications?unread=true').expect(200);
    expect(res.body.notifications.map((n: { title: string }) => n.title)).toEqual(['Your balance is low']);
    expect((await agent.get('/api/notifications?unread=false').expect(200)).body.notifications.map((n: { title: string }) => n.title)).toEqual(['Second']);
    expect((await agent.post('/api/notifications/read-all').send({}).expect(200)).body.marked).toBe(1);
    expect((await agent.get('/api/notifications').expect(200)).body.unreadCount).toBe(0);

    expect((await agent.get('/api/notifications?unread=maybe').expect(400)).body.errors[0].field).toBe('query.unread');
    expect((await agent.post('/api/notifications/not-an-id/read').send({}).expect(400)).body.errors[0].field).toBe('params.id');
    expect((await agent.get('/api/notifications?cursor=bogus').expect(400)).body.errors[0].field).toBe('query.cursor');
  });

  it('pages through with a cursor', async () => {
    const { agent, user } = await signedInUser(ta.app);
    for (let i = 0; i < 5; i++) await ta.deps.notifications.notifier.notify(ta.t.db, { userId: user.id, inbox: { type: 'test', title: `N${i}`, body: 'x' } });
    const first = await agent.get('/api/notifications?limit=3').expect(200);
    expect(first.body.notifications).toHaveLength(3);
    const next = await agent.get(`/api/notifications?limit=3&cursor=${first.body.nextCursor}`).expect(200);
    expect(next.body.nextCursor).toBeNull();
    // Every notification once, newest first (ties within a millisecond are ordered by id).
    const all = [...first.body.notifications, ...next.body.notifications] as Array<{ title: string; createdAt: string }>;
    expect(all.map((n) => n.title).sort()).toEqual(['N0', 'N1', 'N2', 'N3', 'N4']);
    const times = all.map((n) => Date.parse(n.createdAt));
    expect(times).toEqual([...times].sort((a, b) => b - a));
  });
});

describe('pages', () => {
  it('the bell shows the unread count; /notifications lists them and marks them read by keyboard-usable buttons; no ids in the text', async () => {
    const { agent, user } = await signedInUser(ta.app);
    await lowBalanceFor(user.id);
    let page = await agent.get('/pricing').expect(200);
    expect(page.text).toMatch(/<a href="\/notifications" class="bell"[^>]*>.*Notifications.*data-testid="unread-count">1</s);
    page = await agent.get('/notifications').expect(200);
    expect(page.text).toContain('Your balance is low');
    expect(page.text).toContain('1 unread notification.');
    const visible = page.text.replace(/<[^>]+>/g, ' ');
    expect(visible).not.toMatch(UUID);
    expect(page.text).toMatch(/<button type="submit"[^>]*>Mark as read<span class="visually-hidden">/);
    const id = /action="\/notifications\/([0-9a-f-]{36})\/read"/.exec(page.text)![1]!;
    const open = await agent.post(`/notifications/${id}/read`).type('form').send({ _csrf: csrfFrom(page.text), open: '1' }).expect(303);
    expect(open.headers.location).toBe('/pricing');
    page = await agent.get('/notifications').expect(200);
    expect(page.text).toContain('Nothing unread.');
    expect(page.text).not.toContain('data-testid="unread-count"');
  });

  it('/account/settings saves preferences with labelled controls and shows field errors; the API agrees', async () => {
    const { agent } = await signedInUser(ta.app);
    let page = await agent.get('/account/settings').expect(200);
    for (const id of ['set-receipts', 'set-low', 'set-expiring', 'set-jobs', 'set-floor']) expect(page.text).toContain(`<label for="${id}">`);
    expect(page.text).toMatch(/id="set-jobs" name="jobs">/); // jobs off by default
    await agent.post('/account/settings').type('form').send({ _csrf: csrfFrom(page.text), receipts: 'on', jobs: 'on', lowBalanceFloorCredits: '12.5' }).expect(303);
    const api = await agent.get('/api/account/notification-settings').expect(200);
    expect(api.body.settings).toEqual({ receipts: true, lowBalance: false, expiringCredits: false, jobs: true, lowBalanceFloorCredits: 12.5 });
    page = await agent.get('/account/settings').expect(200);
    expect(page.text).toContain('Your notification settings are saved.');
    const bad = await agent.post('/account/settings').type('form').send({ _csrf: csrfFrom(page.text), lowBalanceFloorCredits: '1.23456' }).expect(400);
    expect(bad.text).toContain('Alert level must be a number of credits');
    expect(bad.text).toContain('aria-invalid="true"');
    expect((await agent.get('/api/account/notification-settings').expect(200)).body.settings.lowBalanceFloorCredits).toBe(12.5);
  });

  it('PUT /api/account/notification-settings validates each field and changes only what it is given', async () => {
    const { agent } = await signedInUser(ta.app);
    const res = await agent.put('/api/account/notification-settings').send({ receipts: 'yes', lowBalanceFloorCredits: 0.0001, colour: 'red' }).expect(400);
    expect(res.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['body.colour', 'body.receipts']);
    const floor = await agent.put('/api/account/notification-settings').send({ lowBalanceFloorCredits: 0.0001 }).expect(400);
    expect(floor.body.errors[0].field).toBe('body.lowBalanceFloorCredits');
    expect((await agent.get('/api/account/notification-settings').expect(200)).body.settings).toEqual({ receipts: true, lowBalance: true, expiringCredits: true, jobs: false, lowBalanceFloorCredits: null });
    const ok = await agent.put('/api/account/notification-settings').send({ receipts: false }).expect(200);
    expect(ok.body.settings).toEqual({ receipts: false, lowBalance: true, expiringCredits: true, jobs: false, lowBalanceFloorCredits: null });
  });

  it('a low-balance email follows the preference; the notification always appears', async () => {
    const { agent, user } = await signedInUser(ta.app);
    await agent.put('/api/account/notification-settings').send({ lowBalance: false }).expect(200);
    await lowBalanceFor(user.id);
    expect(await ta.t.db('email_outbox').where({ user_id: user.id, type: 'low_balance' })).toHaveLength(0);
    expect(await ta.t.db('notifications').where({ user_id: user.id, type: 'balance.low' })).toHaveLength(1);
  });
});
