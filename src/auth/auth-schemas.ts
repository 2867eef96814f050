import { z } from 'zod';
import { passwordProblems } from './passwords.ts';

/** zod schemas of the auth routes (API and forms share them). Unknown fields are refused. */

/** An email, trimmed and lower-cased before it is checked (emails are stored that way). */
export const Email = z
  .string({ error: 'is required' })
  .trim()
  .toLowerCase()
  .pipe(z.email({ error: 'must be an email address' }).max(254, 'must be at most 254 characters'));

/** A display name, stored as given: 1–100 characters, not blank, no control characters. */
export const Name = z
  .string({ error: 'is required' })
  .max(100, 'must be at most 100 characters')
  .refine((s) => s.trim().length > 0, 'must not be empty')
  .refine((s) => !/\p{Cc}/u.test(s), 'must not contain control characters');

/** `POST /api/auth/signup` and the /signup form: the password must meet the policy (passwords.ts). */
export const SignupBody = z
  .object({
    email: Email,
    password: z.string({ error: 'is required' }).max(1024, 'must be at most 128 characters'),
    name: Name,
    /** A promo code to redeem once the account exists (issue 17); blank = none. */
    promoCode: z.preprocess((v) => (typeof v === 'string' && v.trim() === '' ? undefined : v), z.string().trim().max(100, 'must be at most 100 characters').optional()),
  })
  .strict()
  .superRefine((v, ctx) => {
    if (typeof v.password !== 'string') return;
    const problems = passwordProblems(v.password, typeof v.email === 'string' ? v.email : undefined);
    for (const message of problems) ctx.addIssue({ code: 'custom', path: ['password'], message });
  });
export type SignupBody = z.infer<typeof SignupBody>;

/** `POST /api/auth/login` and the /login form. */
export const LoginBody = z
  .object({
    email: Email,
    // Not the policy: accounts made before a policy change must still sign in.
    password: z.string({ error: 'is required' }).min(1, 'is required').max(1024, 'is too long'),
  })
  .strict();
export type LoginBody = z.infer<typeof LoginBody>;

/** Login and signup forms also carry where to go afterwards. */
export const NextField = z.object({ next: z.string().max(2000).optional() });

/** A session's public id (see `sessionPublicId`). */
export const SessionIdParams = z.object({ id: z.string().regex(/^[0-9a-f]{32}$/, 'is not a session id') }).strict();
