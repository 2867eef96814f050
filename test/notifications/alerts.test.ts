import crypto from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signedInUser } from '../auth/auth-helpers.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { booksViolations, buildUser } from '../helpers/factories.ts';
import { Webhook } from 'standardwebhooks';
import { manualClock, startReceiver } from './helpers.ts';

let ta: TestApp;
const clock = manualClock();

beforeAll(async () => {
  ta = await buildTestApp({ notify: { clock } });
});
afterAll(async () => {
  await ta.close();
});

const ledger = () => ta.deps.ledger;
const purchase = (userId: string, millicredits: number) =>
  ledger().grant({ transferId: `purchase:${crypto.randomUUID()}`, userId, millicredits, kind: 'purchase', actor: 'stripe', reason: 'test purchase' });
const bonus = (userId: string, millicredits: number, expiresAt: Date | null = null) =>
  ledger().grant({ transferId: `bonus:${crypto.randomUUID()}`, userId, millicredits, kind: 'bonus', actor: 'system', reason: 'test bonus', expiresAt });
const spend = (userId: string, millicredits: number) => ledger().debit({ transferId: `spend:${crypto.randomUUID()}`, userId, millicredits, kind: 'usage', actor: 'test' });
const lowAlerts = (userId: string) => ta.t.db('balance_alerts').where({ user_id: userId, kind: 'low_balance' }).orderBy('created_at');
const count = async (table: string, where: Record<string, unknown>) => Number((await ta.t.db(table).where(where).count({ n: '*' }))[0]!.n);

describe('low-balance thresholds', () => {
  it('50 concurrent spends crossing 20% fire the 20% alert exactly once: one alert, one notification, one email, one webhook', async () => {
    const { agent, user } = await signedInUser(ta.app);
    const receiver = await startReceiver();
    const hook = await agent.post('/api/webhook-endpoints').send({ url: receiver.url, events: ['balance.low'] }).expect(201);
    await spend(user.id, 10_000); // the sign-up bonus: no baseline yet, nothing fires
    expect(await lowAlerts(user.id)).toEqual([]);
    await purchase(user.id, 100_000); // baseline 100 credits: thresholds at 20, 10 and 5
    await spend(user.id, 75_000); // 25 left: above 20%
    expect(await lowAlerts(user.id)).toEqual([]);
    // 50 × 0.2 credits = 10 credits at once: 25 → 15 crosses 20 (not 10).
    const results = await Promise.allSettled(Array.from({ length: 50 }, () => spend(user.id, 200)));
    expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
    expect((await ledger().getBalance(user.id)).available).toBe(15_000);
    const alerts = await lowAlerts(user.id);
    expect(alerts.map((a) => [a.threshold, a.generation, a.threshold_millicredits])).toEqual([['20%', 0, 20_000]]);
    expect(alerts[0].balance_millicredits).toBeLessThan(20_000);
    expect(await count('notifications', { user_id: user.id, type: 'balance.low' })).toBe(1);
    expect(await count('email_outbox', { user_id: user.id, type: 'low_balance' })).toBe(1);
    expect(await count('webhook_deliveries', { type: 'balance.low' })).toBe(1);
    expect(await booksViolations(ta.t.db)).toEqual([]);

    // The webhook reaches the local receiver, signed.
    try {
      await ta.deps.notifications.webhookSender.runOnce();
      expect(receiver.requests).toHaveLength(1);
      const event = new Webhook(hook.body.secret).verify(receiver.requests[0]!.body, receiver.requests[0]!.headers as Record<string, string>) as { type: string; data: Record<string, unknown> };
      expect(event).toMatchObject({ type: 'balance.low', data: { threshold: '20%', thresholdCredits: 20 } });
      expect(event.data.availableCredits).toBeLessThan(20);
    } finally {
      await receiver.close();
    }

    // The bell and the alert history show it.
    const page = await agent.get('/account').expect(200);
    expect(page.text).toMatch(/data-testid="unread-count">\d+</);
    expect(page.text).toContain('below 20% of your last top-up');
  });

  it('a spend says in its own round trip what watches it; the after-spend checks read nothing more when nothing does, and still fire when something does', async () => {
    const { user } = await signedInUser(ta.app);
    const sql: string[] = [];
    const listen = (q: { sql: string }) => sql.push(q.sql);
    const checksRead = () => sql.filter((q) => /low_balance_state|notification_settings|auto_recharge_settings/.test(q));
    ta.t.db.on('query', listen);
    try {
      // The sign-up bonus only: no baseline, no floor, no auto-recharge.
      const plain = await spend(user.id, 1_000);
      await ta.deps.autoRecharge.settled();
      expect(plain.watch).toEqual({ lowBalance: false, autoRecharge: false });
      expect(checksRead()).toEqual([]);

      // A purchase sets the baseline (100 credits): the next spends are watched, through every path.
      await purchase(user.id, 100_000);
      sql.length = 0;
      const watched = await spend(user.id, 70_000); // 39 left of 100 + 9
      expect(watched.watch).toEqual({ lowBalance: true, autoRecharge: false });
      expect(checksRead().length).toBeGreaterThan(0);
      expect(await lowAlerts(user.id)).toEqual([]);
      // A one-commit debit (requireCredits' priced path) crossing 20%: its watch says so, the alert fires.
      const open = await ledger().openDebit({ transferId: `open:${crypto.randomUUID()}`, userId: user.id, millicredits: 20_000, kind: 'usage', actor: 'test' });
      expect(await open.commit()).toEqual({ lowBalance: true, autoRecharge: false }); // read in the COMMIT's round trip
      expect((await lowAlerts(user.id)).map((a) => a.threshold)).toEqual(['20%']);
      // A hold posted (the worker's path) crossing 10%.
      const hold = await ledger().reserve({ holdId: `hold:${crypto.randomUUID()}`, userId: user.id, millicredits: 10_000, timeoutMs: 60_000, actor: 'test' });
      const posted = await ledger().post({ holdId: hold.id, millicredits: 10_000, actor: 'test' });
      expect(posted.watch).toEqual({ lowBalance: true, autoRecharge: false });
      expect((await lowAlerts(user.id)).map((a) => a.threshold)).toEqual(['20%', '10%']);
      // Spends that arrive together: the first goes alone, the others share one transaction (group
      // commit); each still carries its watch.
      const together = await Promise.all([1, 2, 3].map(() => spend(user.id, 100)));
      expect(together.map((s) => s.watch)).toEqual([1, 2, 3].map(() => ({ lowBalance: true, autoRecharge: false })));
    } finally {
      ta.t.db.off('query', listen);
    }
  });

  it('a one-commit debit reads its watch after the COMMIT: a floor set while the charge was open still fires', async () => {
    const { agent, user } = await signedInUser(ta.app);
    const available = (await ledger().getBalance(user.id)).available;
    const open = await ledger().openDebit({ transferId: `open:${crypto.randomUUID()}`, userId: user.id, millicredits: available - 1_000, kind: 'usage', actor: 'test' });
    // Nobody watched this user when the charge was taken; the user sets a 5-credit floor before it commits.
    await agent.put('/api/account/notification-settings').send({ lowBalanceFloorCredits: 5 }).expect(200);
    expect(await open.commit()).toEqual({ lowBalance: true, autoRecharge: false });
    expect((await lowAlerts(user.id)).map((a) => [a.threshold, a.balance_millicredits])).toEqual([['floor', 1_000]]);
  });

  it('fires once per downward crossing and re-arms only after the balance rises above the threshold', async () => {
    const user = await buildUser(ta.t.db);
    await purchase(user.id, 100_000);
    await spend(user.id, 85_000); // 15: below 20%
    await spend(user.id, 1_000); // 14: still below, no new alert
    await bonus(user.id, 3_000); // 17: not above 20, still disarmed
    await spend(user.id, 1_000); // 16
    expect((await lowAlerts(user.id)).map((a) => a.threshold)).toEqual(['20%']);
    await bonus(user.id, 10_000); // 26: above 20 → re-armed (a bonus is not a purchase: baseline stays 100)
    await spend(user.id, 7_000); // 19: fires again, next generation
    await spend(user.id, 10_000); // 9: crosses 10%
    await spend(user.id, 5_000); // 4: crosses 5%
    const alerts = await lowAlerts(user.id);
    expect(alerts.map((a) => `${a.threshold}#${a.generation}`)).toEqual(['20%#0', '20%#1', '10%#0', '5%#0']);
    expect(await count('notifications', { user_id: user.id, type: 'balance.low' })).toBe(4);
  });

  it('crossing several thresholds at once records each and notifies once (for the lowest)', async () => {
    const user = await buildUser(ta.t.db);
    await purchase(user.id, 100_000);
    await spend(user.id, 96_000);
    expect((await lowAlerts(user.id)).map((a) => a.threshold).sort()).toEqual(['10%', '20%', '5%']);
    const notes = await ta.t.db('notifications').where({ user_id: user.id, type: 'balance.low' });
    expect(notes).toHaveLength(1);
    expect(notes[0].body).toContain('below 5% of your last top-up');
  });

  it('a new purchase resets the baseline and re-arms; the optional absolute floor fires on its own', async () => {
    const { agent, user } = await signedInUser(ta.app);
    await spend(user.id, 10_000);
    await agent.put('/api/account/notification-settings').send({ lowBalanceFloorCredits: 50 }).expect(200);
    await purchase(user.id, 200_000); // baseline 200: 40, 20, 10; floor 50
    await spend(user.id, 140_000); // 60
    expect(await lowAlerts(user.id)).toEqual([]);
    await spend(user.id, 20_000); // 40: crosses the floor (50), not 20% (40 is not below 40)
    expect((await lowAlerts(user.id)).map((a) => a.threshold)).toEqual(['floor']);
    await spend(user.id, 1_000); // 39: crosses 20% of 200
    expect((await lowAlerts(user.id)).map((a) => a.threshold)).toEqual(['floor', '20%']);
    await purchase(user.id, 61_000); // 100 now: the new baseline; all re-armed
    await spend(user.id, 81_000); // 19: below 20% of 100 and below the floor again
    const last = (await lowAlerts(user.id)).slice(2).map((a) => `${a.threshold}#${a.generation}`).sort();
    expect(last).toEqual(['20%#1', 'floor#1']);
  });
});

describe('expiring credits', () => {
  it('one notice per lot expiring within 7 days, however often and concurrently the sweep runs', async () => {
    const { user } = await signedInUser(ta.app);
    const now = clock();
    const soon = await bonus(user.id, 3_000, new Date(now.getTime() + 5 * 86_400_000));
    const later = await bonus(user.id, 4_000, new Date(now.getTime() + 10 * 86_400_000));
    const scanner = ta.deps.notifications.scanner;
    await Promise.all([scanner.runOnce(now), scanner.runOnce(now), scanner.runOnce(now)]);
    await scanner.runOnce(now);
    let notices = await ta.t.db('balance_alerts').where({ user_id: user.id, kind: 'credits_expiring' });
    // The sign-up bonus (30 days) and the 10-day lot are not due yet.
    expect(notices.map((n) => n.lot_id)).toEqual([soon.lot.id]);
    expect(notices[0].lot_remaining_millicredits).toBe(3_000);
    expect(await count('notifications', { user_id: user.id, type: 'credits.expiring' })).toBe(1);
    const mails = await ta.t.db('email_outbox').where({ user_id: user.id, type: 'credits_expiring' });
    expect(mails).toHaveLength(1);
    expect(mails[0].subject).toContain('3 Tally credits expire on');

    // Four days later the 10-day lot is within 7 days: its own single notice.
    const later4 = new Date(now.getTime() + 4 * 86_400_000);
    await Promise.all([scanner.runOnce(later4), scanner.runOnce(later4)]);
    notices = await ta.t.db('balance_alerts').where({ user_id: user.id, kind: 'credits_expiring' }).orderBy('created_at');
    expect(notices.map((n) => n.lot_id)).toEqual([soon.lot.id, later.lot.id]);
    expect(await count('email_outbox', { user_id: user.id, type: 'credits_expiring' })).toBe(2);
  });

  it('respects the preference: no email with expiring-credit emails off, but the notice and the alert are kept', async () => {
    const { agent, user } = await signedInUser(ta.app);
    await agent.put('/api/account/notification-settings').send({ expiringCredits: false }).expect(200);
    const now = clock();
    await bonus(user.id, 1_000, new Date(now.getTime() + 2 * 86_400_000));
    await ta.deps.notifications.scanner.runOnce(now);
    expect(await count('balance_alerts', { user_id: user.id, kind: 'credits_expiring' })).toBe(1);
    expect(await count('notifications', { user_id: user.id, type: 'credits.expiring' })).toBe(1);
    expect(await count('email_outbox', { user_id: user.id, type: 'credits_expiring' })).toBe(0);
  });
});
