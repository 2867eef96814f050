import pg from 'pg';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { GOOD_PASSWORD, sessionCookie, signedInUser } from './auth-helpers.ts';

let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp();
});
afterAll(async () => {
  await t.close();
});

/** The session id inside a signed `tally.sid` cookie value (`s:<sid>.<signature>`, URL-encoded). */
const sidOf = (cookie: string) => decodeURIComponent(cookie).slice(2).split('.')[0]!;
const me = (cookie: string) => request(t.app).get('/api/auth/me').set('Cookie', `tally.sid=${cookie}`);

async function signedInCookie(): Promise<{ cookie: string; user: { id: string; email: string; name: string } }> {
  const { agent, user } = await signedInUser(t.app, { name: 'Ann Original' });
  const res = await agent.post('/api/auth/login').send({ email: user.email, password: GOOD_PASSWORD });
  return { cookie: sessionCookie(res)!, user };
}

/** The SQL text of every statement any pg client sends while `work` runs. */
async function statementsDuring(work: () => Promise<unknown>): Promise<string[]> {
  const seen: string[] = [];
  const original = pg.Client.prototype.query;
  pg.Client.prototype.query = function (this: pg.Client, ...args: unknown[]) {
    const q = args[0] as string | { text?: string };
    seen.push(typeof q === 'string' ? q : (q?.text ?? ''));
    return (original as (...a: unknown[]) => unknown).apply(this, args);
  } as typeof original;
  try {
    await work();
  } finally {
    pg.Client.prototype.query = original;
  }
  return seen;
}

describe('the session and the signed-in user come from one query (issue 11)', () => {
  it('an authenticated API request reads session and user in one statement and writes nothing', async () => {
    const { cookie } = await signedInCookie();
    expect((await me(cookie)).status).toBe(200); // the once-a-minute touch is done
    const sql = await statementsDuring(async () => expect((await request(t.app).get('/api/webhook-endpoints').set('Cookie', `tally.sid=${cookie}`)).status).toBe(200));
    const sessionOrUser = sql.filter((s) => /"session"|\busers\b/.test(s));
    expect(sessionOrUser).toHaveLength(1);
    expect(sessionOrUser[0]).toMatch(/FROM "session" s\s+LEFT JOIN users u/);
    expect(sql.filter((s) => /^\s*(INSERT|UPDATE|DELETE)/i.test(s))).toEqual([]);
  });

  it('sees the user as they are now: a renamed user shows the new name on the next request', async () => {
    const { cookie, user } = await signedInCookie();
    expect((await me(cookie)).body.user.name).toBe('Ann Original');
    await t.t.db('users').where({ id: user.id }).update({ name: 'Ann Renamed' });
    expect((await me(cookie)).body.user.name).toBe('Ann Renamed');
  });

  it('a session whose user is gone signs nobody in, and forgets that user', async () => {
    const { cookie, user } = await signedInCookie();
    await t.t.db('session').where({ sid: sidOf(cookie) }).update({ sess: t.t.db.raw(`jsonb_set(sess::jsonb, '{userId}', '"00000000-0000-4000-8000-000000000000"')::json`) });
    expect((await me(cookie)).status).toBe(401);
    const row = await t.t.db('session').where({ sid: sidOf(cookie) }).first();
    expect(row.sess.userId).toBeUndefined();
    expect(user.id).not.toBe('00000000-0000-4000-8000-000000000000');
  });

  it('a session whose userId is not a UUID is refused with 401, not a server error', async () => {
    const { cookie } = await signedInCookie();
    await t.t.db('session').where({ sid: sidOf(cookie) }).update({ sess: t.t.db.raw(`jsonb_set(sess::jsonb, '{userId}', '"not-a-uuid"')::json`) });
    expect((await me(cookie)).status).toBe(401);
  });
});
