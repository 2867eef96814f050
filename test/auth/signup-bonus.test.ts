import request from 'supertest';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalEmail } from '../../src/auth/signup-bonus-store.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';
import { GOOD_PASSWORD } from './auth-helpers.ts';
import { auditLog } from '../helpers/audit.ts';

// Issue 9, defect 11: plus-addressed sign-ups each collected the free credits.
let t: TestApp;
beforeAll(async () => {
  t = await buildTestApp({ env: { SIGNUP_MAX_PER_IP: '1000' } });
});
afterAll(async () => t.close());

let n = 0;
const signup = (email: string) => request(t.app).post('/api/auth/signup').send({ email, password: GOOD_PASSWORD, name: 'Plus' });
const base = () => `ann-${process.pid}-${++n}`;

describe('the sign-up bonus, once per mailbox', () => {
  it('counts a+x@b as a@b: the accounts are created, only the first gets the credits', async () => {
    const local = base();
    const first = await signup(`${local}+one@example.test`);
    expect(first.status).toBe(201);
    expect(first.body.balance.available).toBe(10);
    for (const email of [`${local}+two@example.test`, `${local}@example.test`, `${local.toUpperCase()}+Three@Example.test`]) {
      const res = await signup(email);
      expect(res.status).toBe(201);
      expect(res.body.balance.available).toBe(0);
    }
    // another mailbox still gets its bonus
    expect((await signup(`${base()}@example.test`)).body.balance.available).toBe(10);
    const audit = await auditLog(t.t.db).where({ action: 'auth.signup' }).whereRaw(`details->>'email' like ?`, [`${local}%`]);
    expect(audit.map((a: { details: { signupBonusMillicredits: number } }) => a.details.signupBonusMillicredits).sort()).toEqual([0, 0, 0, 10_000]);
  });

  it('when plus-addressed sign-ups race, exactly one gets the bonus', async () => {
    const local = base();
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((i) => signup(`${local}+${i}@example.test`)));
    expect(results.map((r) => r.status)).toEqual(Array(6).fill(201));
    expect(results.map((r) => r.body.balance.available).sort()).toEqual([0, 0, 0, 0, 0, 10]);
    const grants = await t.t.db('transfers').where({ kind: 'signup_bonus' }).whereIn('credit_account_id', t.t.db('accounts').select('id').whereIn('user_id', results.map((r) => r.body.user.id)));
    expect(grants).toHaveLength(1);
  });

  it('canonical form: lower case, without the +tag of the local part', () => {
    expect(canonicalEmail('Ann+Promo@Example.COM')).toBe('ann@example.com');
    expect(canonicalEmail('ann@example.com')).toBe('ann@example.com');
    expect(canonicalEmail('a+b+c@x.test')).toBe('a@x.test');
  });
});
