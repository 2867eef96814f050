import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { GOOD_PASSWORD, sessionCookie, signedInUser } from './auth-helpers.ts';

let t: TestApp;
let server: http.Server;
let port: number;
beforeAll(async () => {
  t = await buildTestApp();
  server = http.createServer(t.app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await t.close();
});

/** The cookie of a new user signed in through the API (no CSRF token in the session yet). */
async function signedInCookie(): Promise<{ cookie: string; email: string }> {
  const { agent, user } = await signedInUser(t.app);
  const res = await agent.post('/api/auth/login').send({ email: user.email, password: GOOD_PASSWORD });
  return { cookie: sessionCookie(res)!, email: user.email };
}

/**
 * A page view held in flight: `GET /account` with a form body it has not finished sending. The
 * session middleware loads the session as soon as the headers arrive; the page then renders (and
 * stores its first CSRF token in the session, i.e. saves it) only once `finish()` sends the rest.
 */
async function pageViewInFlight(cookie: string): Promise<{ finish(): Promise<number> }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise((r) => socket.once('connect', r));
  let response = '';
  socket.on('data', (c: Buffer) => (response += c.toString('latin1')));
  socket.write(
    'GET /account HTTP/1.1\r\nHost: localhost\r\nAccept: text/html\r\nConnection: close\r\n' +
      `Cookie: tally.sid=${cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 3\r\n\r\na=`,
  );
  // The session is read from the table when the headers arrive; wait until that happened.
  await waitFor(async () => (await t.t.db.raw(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%FROM "session" s%'`)).rows[0].n === 0);
  await new Promise((r) => setTimeout(r, 200));
  return {
    async finish() {
      socket.write('1');
      await new Promise((r) => socket.once('close', r));
      return Number(/^HTTP\/1\.1 (\d+)/.exec(response)?.[1]);
    },
  };
}

async function waitFor(check: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 100 && !(await check()); i++) await new Promise((r) => setTimeout(r, 20));
}

/** The session id inside a signed `tally.sid` cookie value (`s:<sid>.<signature>`, URL-encoded). */
const sidOf = (cookie: string) => decodeURIComponent(cookie).slice(2).split('.')[0]!;

const me = (cookie: string) => request(server).get('/api/auth/me').set('Cookie', `tally.sid=${cookie}`);

describe('a destroyed session stays destroyed (issue 9, defect 1)', () => {
  it('logout while a page view of the same session is in flight: the old cookie is refused afterwards', async () => {
    const { cookie } = await signedInCookie();
    const view = await pageViewInFlight(cookie);
    expect((await request(server).post('/api/auth/logout').set('Cookie', `tally.sid=${cookie}`)).status).toBe(204);
    expect(await view.finish()).toBe(200); // the page itself was already authorised
    expect((await me(cookie)).status).toBe(401);
    expect(await t.t.db('session').where({ sid: sidOf(cookie) }).first()).toBeUndefined();
  });

  it('"sign out other sessions" while the other session is viewing a page: that session stays signed out', async () => {
    const { cookie: other, email } = await signedInCookie();
    const login = await request(server).post('/api/auth/login').send({ email, password: GOOD_PASSWORD });
    const current = sessionCookie(login)!;
    const view = await pageViewInFlight(other);
    const revoked = await request(server).post('/api/auth/sessions/revoke-others').set('Cookie', `tally.sid=${current}`);
    expect(revoked.status).toBe(200);
    await view.finish();
    expect((await me(other)).status).toBe(401);
    expect((await me(current)).status).toBe(200);
  });

  it('touches a session at most once a minute, not with a committed UPDATE on every request', async () => {
    const { cookie } = await signedInCookie();
    const sid = sidOf(cookie);
    const expireOf = async () => (await t.t.db('session').where({ sid }).first('expire')).expire.getTime();
    expect((await me(cookie)).status).toBe(200);
    const first = await expireOf();
    await new Promise((r) => setTimeout(r, 1100)); // the stored expiry has a resolution of 1 s
    for (let i = 0; i < 3; i++) expect((await me(cookie)).status).toBe(200);
    expect(await expireOf()).toBe(first);
  });
});
