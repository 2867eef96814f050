import crypto from 'node:crypto';
import type express from 'express';
import request from 'supertest';
import { ensureAdmin } from '../../src/auth/ensure-admin.ts';
import type { Db } from '../../src/db/database.ts';

/** A password that passes the policy (12+ characters, not common). */
export const GOOD_PASSWORD = 'correct-lamp-battery-42';

export type Agent = ReturnType<typeof request.agent>;
/** Anything that can post: `request(app)` or an agent. */
export type Poster = { post(url: string): request.Test };

/** What a browser sends when it navigates (pages answer HTML only to clients that ask for it). */
export const BROWSER_ACCEPT = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';

/** A cookie-keeping agent that asks for HTML like a browser (API routes still answer JSON). */
export function browser(app: express.Express): Agent {
  return request.agent(app).set('Accept', BROWSER_ACCEPT);
}

/** A unique, normalized test email. */
export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${crypto.randomBytes(5).toString('hex')}@example.test`;
}

/** The CSRF token of a rendered page (`name="_csrf" value="…"`). */
export function csrfFrom(html: string): string {
  const m = /name="_csrf" value="([^"]+)"/.exec(html);
  if (!m) throw new Error('no CSRF token in the page');
  return m[1]!;
}

/** Signs up through the JSON API on `agent` (one bcrypt hash). Returns the response. */
export async function signupApi(agent: Poster, body: Partial<{ email: string; password: string; name: string }> = {}) {
  return agent
    .post('/api/auth/signup')
    .send({ email: body.email ?? uniqueEmail(), password: body.password ?? GOOD_PASSWORD, name: body.name ?? 'Test User' });
}

/** A new signed-in user on a fresh agent. */
export async function signedInUser(app: express.Express, body: Partial<{ email: string; password: string; name: string }> = {}) {
  const agent = browser(app);
  const res = await signupApi(agent, body);
  if (res.status !== 201) throw new Error(`signup failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { agent, user: res.body.user as { id: string; email: string; name: string; role: string }, password: body.password ?? GOOD_PASSWORD };
}

/** An admin (created with ensureAdmin) signed in on a fresh agent. */
export async function signedInAdmin(app: express.Express, db: Db) {
  const email = uniqueEmail('admin');
  const { user } = await ensureAdmin(db, { email, password: GOOD_PASSWORD, name: 'Ada Admin' });
  const agent = browser(app);
  const res = await agent.post('/api/auth/login').send({ email, password: GOOD_PASSWORD });
  if (res.status !== 200) throw new Error(`admin login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { agent, user };
}

/** The `tally.sid` cookie value a response set, if any. */
export function sessionCookie(res: { headers: Record<string, unknown> }): string | undefined {
  const set = res.headers['set-cookie'] as string[] | string | undefined;
  const list = Array.isArray(set) ? set : set ? [set] : [];
  const c = list.find((s) => s.startsWith('tally.sid='));
  return c ? c.split(';')[0]!.slice('tally.sid='.length) : undefined;
}
