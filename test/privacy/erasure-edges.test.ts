import crypto from 'node:crypto';
import Stripe from 'stripe';
import request from 'supertest';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { StripeEmulatorServer } from '@tally/stripe-emulator';
import { leaveTeamsAtErasure } from '../../src/teams/owner-succession.ts';
import { signedInAdmin, signedInUser, type Agent } from '../auth/auth-helpers.ts';
import type { TestApp } from '../helpers/app.ts';
import { booksViolations, fundAccount } from '../helpers/factories.ts';
import { payOnCheckoutPage, startStripeTestApp, WEBHOOK_SECRET, type StripeTestApp } from '../helpers/stripe-app.ts';

// Two edges of erasure (issue 19): a team whose only owner is erased keeps an owner, and the
// customer.deleted event Stripe sends after the erasure deletes the customer is not a "problem".
let app: StripeTestApp;
let ta: TestApp;
let emulator: StripeEmulatorServer;
let stripe: Stripe;
let admin: Agent;

beforeAll(async () => {
  app = await startStripeTestApp();
  ({ ta, emulator, stripe } = app);
  admin = (await signedInAdmin(ta.app, ta.t.db)).agent;
});
afterEach(async () => expect(await booksViolations(ta.t.db)).toEqual([]));
afterAll(async () => {
  await app.close();
});

type Person = { id: string; email: string; name: string };
const person = async (name: string): Promise<Person> => (await signedInUser(ta.app, { name })).user;

/** A team created by `owner`, with `others` joined through invitations, in order, a day apart (joined_at set so the order is certain). */
async function team(name: string, owner: Person, others: Array<[Person, 'admin' | 'member' | 'owner']> = []) {
  const t = await ta.deps.teams.create(owner.id, name);
  const start = Date.now() - 30 * 86_400_000;
  await ta.t.db('team_members').where({ team_id: t.id, user_id: owner.id }).update({ joined_at: new Date(start) });
  for (const [i, [p, role]] of others.entries()) {
    const inv = await ta.deps.teams.invite(t.id, owner.id, { email: p.email, role });
    await ta.deps.teams.accept(new URL(inv.acceptUrl).pathname.split('/').pop()!, p);
    await ta.t.db('team_members').where({ team_id: t.id, user_id: p.id }).update({ joined_at: new Date(start + (i + 1) * 86_400_000) });
  }
  return t;
}

const members = async (teamId: string) =>
  Object.fromEntries(((await ta.t.db('team_members').where({ team_id: teamId }).select('user_id', 'role', 'removed_at')) as Array<{ user_id: string; role: string; removed_at: Date | null }>).map((r) => [r.user_id, r.removed_at ? 'removed' : r.role]));
const eraseNow = (userId: string) => admin.post(`/api/admin/users/${userId}/erasure`).send({ reason: 'Erasure request, ticket 7' }).expect(200);
const promotions = (teamId: string) => ta.t.db('audit_log').where({ action: 'team.owner_promoted', target_type: 'team', target_id: teamId }).select('actor', 'details');

describe('erasing a team owner', () => {
  it('the only owner erased: the longest-standing admin (else member) becomes owner, audited and told; the erased user is in no team', async () => {
    const ann = await person('Ann');
    const bob = await person('Bob');
    const cid = await person('Cid');
    const dee = await person('Dee');
    const eve = await person('Eve');
    const plain = await team('Plain', ann, [[bob, 'member']]);
    // Cid joined before Dee, but Dee is an admin: an admin is preferred
    const withAdmin = await team('With admin', ann, [[cid, 'member'], [dee, 'admin']]);
    // Ann is not this team's only owner: nobody is promoted, Ann just leaves
    const twoOwners = await team('Two owners', eve, [[ann, 'owner'], [bob, 'member']]);

    const res = await eraseNow(ann.id);
    expect(res.body.deletion.status).toBe('erased');

    expect(await members(plain.id)).toEqual({ [ann.id]: 'removed', [bob.id]: 'owner' });
    expect(await members(withAdmin.id)).toEqual({ [ann.id]: 'removed', [cid.id]: 'member', [dee.id]: 'owner' });
    expect(await members(twoOwners.id)).toEqual({ [ann.id]: 'removed', [eve.id]: 'owner', [bob.id]: 'member' });
    expect(await ta.deps.teams.listFor(ann.id)).toEqual([]);

    const adminId = (await ta.t.db('audit_log').where({ action: 'privacy.erasure_started', target_id: ann.id }).first('actor_user_id')).actor_user_id as string;
    expect(await promotions(plain.id)).toEqual([{ actor: `admin:${adminId}`, details: expect.objectContaining({ userId: bob.id, from: 'member', teamName: 'Plain' }) }]);
    expect(await promotions(withAdmin.id)).toEqual([{ actor: `admin:${adminId}`, details: expect.objectContaining({ userId: dee.id, from: 'admin', teamName: 'With admin' }) }]);
    expect(await promotions(twoOwners.id)).toEqual([]);
    // the admin API shows it, and the erasure's team step says what it did
    const audit = await admin.get('/api/admin/audit').query({ action: 'team.owner_promoted', target: `team:${plain.id}` }).expect(200);
    expect(audit.body.entries).toHaveLength(1);
    const step = await ta.t.db('audit_log').where({ action: 'privacy.erasure_step', target_id: ann.id }).whereRaw(`details->>'step' = 'pseudonymised'`).first('details');
    expect(step.details).toMatchObject({ teamsLeft: 3, ownersPromoted: 2 });

    // the new owner is told in their notification centre, and can act as the owner
    const [notice] = await ta.t.db('notifications').where({ user_id: bob.id, type: 'team_owner_promoted' });
    expect(notice).toMatchObject({ title: 'You are now an owner of Plain', link: `/teams/${plain.id}` });
    await ta.deps.teams.updateMember(plain.id, bob.id, bob.id, { monthlyBudget: 5000 });

    // erasing again changes nothing
    await eraseNow(ann.id);
    expect(await promotions(plain.id)).toHaveLength(1);
  });

  it('a team whose only owner is its only member: erased without error, the team and its credits stay as they are', async () => {
    const solo = await person('Solo');
    const t = await team('Solo team', solo);
    await fundAccount(ta.deps.ledger, t.id, 7000);
    await eraseNow(solo.id);
    expect(await members(t.id)).toEqual({ [solo.id]: 'removed' });
    expect(await promotions(t.id)).toEqual([]);
    expect(await ta.deps.ledger.getBalance(t.id)).toMatchObject({ available: 7000, held: 0 });
  });

  it('two owners erased at the same moment: the team still gets an owner (the second waits for the first on the member rows)', async () => {
    const [one, two, stays] = [await person('One'), await person('Two'), await person('Stays')];
    const t = await team('Racing', one, [[two, 'owner'], [stays, 'member']]);
    const now = new Date();
    // the team steps of two erasures, the second started while the first has not committed
    const first = await ta.t.db.transaction();
    const second = await ta.t.db.transaction();
    try {
      await leaveTeamsAtErasure(first, { audit: ta.deps.audit }, one.id, 'system', now);
      let settled = false;
      const secondDone = leaveTeamsAtErasure(second, { audit: ta.deps.audit }, two.id, 'system', now).finally(() => (settled = true));
      const waiting = async () => Number((await ta.t.db.raw(`SELECT count(*) AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`)).rows[0].n);
      await expect.poll(async () => settled || (await waiting()) > 0, { timeout: 10_000 }).toBe(true);
      await first.commit();
      expect((await secondDone).promotions).toEqual([{ teamId: t.id, userId: stays.id, from: 'member' }]);
      await second.commit();
    } finally {
      if (!first.isCompleted()) await first.rollback();
      if (!second.isCompleted()) await second.rollback();
    }
    expect(await members(t.id)).toEqual({ [one.id]: 'removed', [two.id]: 'removed', [stays.id]: 'owner' });
    expect(await promotions(t.id)).toHaveLength(1);
  });

  it('a scheduled erasure after the grace period promotes too (actor: system)', async () => {
    const { agent, user: owner, password } = await signedInUser(ta.app, { name: 'Later' });
    const member = await person('Stays');
    const t = await team('Scheduled', owner, [[member, 'member']]);
    await agent.post('/api/account/deletion').send({ password }).expect(202);
    await ta.t.db('account_deletions').where({ user_id: owner.id }).update({ scheduled_for: new Date(Date.now() - 1000) });
    expect(await ta.deps.privacy.runDueErasures()).toBeGreaterThanOrEqual(1);
    expect(await members(t.id)).toEqual({ [owner.id]: 'removed', [member.id]: 'owner' });
    expect(await promotions(t.id)).toEqual([{ actor: 'system', details: expect.objectContaining({ userId: member.id }) }]);
  });
});

describe('customer.deleted from Stripe', () => {
  async function buyStarter(agent: Agent) {
    const checkout = await agent.post('/api/payments/checkout').send({ packageId: 'starter' }).expect(201);
    await payOnCheckoutPage(emulator, checkout.body.sessionId, '4242 4242 4242 4242', 'Buyer').expect(303);
    await emulator.emulator.deliverDue();
  }
  const customerOf = async (userId: string) => ((await ta.t.db('stripe_customers').where({ user_id: userId }).first('customer_id')) as { customer_id: string } | undefined)?.customer_id;
  const problemsOf = (type: string) => ta.t.db('stripe_webhook_problems').where({ event_type: type });

  it('after the erasure of a buyer, the event Stripe sends is handled (the stored customer forgotten), not listed as a problem', async () => {
    const { agent, user } = await signedInUser(ta.app, { name: 'Buyer' });
    await buyStarter(agent);
    const customer = (await customerOf(user.id))!;
    expect(customer).toMatch(/^cus_/);

    await eraseNow(user.id);
    expect(await emulator.emulator.deliverDue()).toBeGreaterThan(0);
    const [event] = await stripe.events.list({ type: 'customer.deleted' }).then((l) => l.data.filter((e) => (e.data.object as { id: string }).id === customer));
    expect(await ta.t.db('stripe_webhook_events').where({ id: event!.id }).first('outcome')).toEqual({ outcome: 'customer_forgotten' });
    expect(await problemsOf('customer.deleted')).toEqual([]);
    const listed = await admin.get('/api/admin/webhook-problems').expect(200);
    expect(listed.body.problems.filter((p: { eventType: string }) => p.eventType === 'customer.deleted')).toEqual([]);
    expect(await customerOf(user.id)).toBeUndefined();
  });

  it('a customer deleted at Stripe (not by an erasure) is forgotten: the next purchase gets a new customer', async () => {
    const { agent, user } = await signedInUser(ta.app, { name: 'Buyer' });
    await buyStarter(agent);
    const customer = (await customerOf(user.id))!;
    await stripe.customers.del(customer);
    await emulator.emulator.deliverDue();
    expect(await customerOf(user.id)).toBeUndefined();
    expect(await problemsOf('customer.deleted')).toEqual([]);

    await buyStarter(agent);
    const next = await customerOf(user.id);
    expect(next).toMatch(/^cus_/);
    expect(next).not.toBe(customer);
    expect(await stripe.customers.retrieve(next!)).not.toHaveProperty('deleted', true);
    expect((await agent.get('/api/credits/balance').expect(200)).body.available).toBe(210);
  });

  it('a signed customer.deleted for a customer Tally does not have: 200, nothing recorded as a problem', async () => {
    const payload = JSON.stringify({ id: `evt_${crypto.randomBytes(8).toString('hex')}`, object: 'event', type: 'customer.deleted', created: Math.floor(Date.now() / 1000), data: { object: { id: 'cus_not_ours', object: 'customer', deleted: true } } });
    const signature = new Stripe('sk_test_signer').webhooks.generateTestHeaderString({ payload, secret: WEBHOOK_SECRET });
    const res = await request(ta.app).post('/api/payments/webhook').set('Content-Type', 'application/json').set('Stripe-Signature', signature).send(payload).expect(200);
    expect(res.body).toMatchObject({ received: true, outcome: 'ignored:unknown_customer' });
    expect(await problemsOf('customer.deleted')).toEqual([]);
  });
});
