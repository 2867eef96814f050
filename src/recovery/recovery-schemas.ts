import { z } from 'zod';
import { Email } from '../auth/auth-schemas.ts';

/** `POST /api/auth/password-reset` and the /forgot-password form. */
export const PasswordResetBody = z.object({ email: Email }).strict();
export type PasswordResetBody = z.infer<typeof PasswordResetBody>;

/** A token from an email link: base64url of 32 bytes. */
export const Token = z.string({ error: 'is required' }).regex(/^[A-Za-z0-9_-]{43}$/, 'is not a valid link token; use the link from the email');

/** `POST /api/auth/password-reset/confirm` and the /reset-password form. The policy is checked by the service (it needs the account's email). */
export const PasswordResetConfirmBody = z
  .object({
    token: Token,
    password: z.string({ error: 'is required' }).max(1024, 'must be at most 128 characters'),
  })
  .strict();
export type PasswordResetConfirmBody = z.infer<typeof PasswordResetConfirmBody>;

export const VerifyEmailBody = z.object({ token: Token }).strict();
