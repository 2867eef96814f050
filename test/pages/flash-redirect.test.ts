import http from 'node:http';
import type { AddressInfo } from 'node:net';
import session from 'express-session';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { BROWSER_ACCEPT, GOOD_PASSWORD, uniqueEmail } from '../auth/auth-helpers.ts';

// A browser follows a 303 as soon as its headers arrive. The message a form post leaves for the
// next page (a flash in the session) must be stored by then, or the next page loses it.
let t: TestApp;
let server: http.Server;
let base: string;
// A store write that takes a moment (a busy database): the race a quick browser can win.
const originalSave = session.Session.prototype.save;
beforeAll(async () => {
  session.Session.prototype.save = function slowSave(this: session.Session, callback?: (err?: unknown) => void) {
    setTimeout(() => originalSave.call(this, callback), 150);
    return this;
  };
  t = await buildTestApp();
  server = http.createServer(t.app);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  session.Session.prototype.save = originalSave;
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  await t.close();
});

const cookieOf = (setCookie: string[] | string | undefined) => ([] as string[]).concat(setCookie ?? []).map((c) => c.split(';')[0]).join('; ');

/** POSTs a form and resolves with the response head only, the moment the headers arrive. */
function postHead(path: string, cookie: string, form: Record<string, string>): Promise<http.IncomingMessage> {
  const body = new URLSearchParams(form).toString();
  return new Promise((resolve, reject) => {
    const req = http.request(`${base}${path}`, {
      method: 'POST',
      headers: { Cookie: cookie, Accept: BROWSER_ACCEPT, 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': Buffer.byteLength(body) },
    });
    req.on('response', (res) => {
      resolve(res);
      res.resume();
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('a flash after a redirect', () => {
  it('is there on the next page even when it is requested the moment the 303 arrives', async () => {
    for (let i = 0; i < 3; i++) {
      const signup = await fetch(`${base}/signup`, { headers: { Accept: BROWSER_ACCEPT } });
      const csrf = /name="_csrf" value="([^"]+)"/.exec(await signup.text())![1]!;
      const res = await postHead('/signup', cookieOf(signup.headers.getSetCookie()), { _csrf: csrf, name: 'Quick Follower', email: uniqueEmail('flash'), password: GOOD_PASSWORD });
      expect(res.statusCode).toBe(303);
      expect(res.headers.location).toBe('/tasks');
      const next = await fetch(`${base}/tasks`, { headers: { Accept: BROWSER_ACCEPT, Cookie: cookieOf(res.headers['set-cookie']) } });
      expect(await next.text(), `try ${i}`).toContain('Welcome to Tally!');
    }
  });
});
