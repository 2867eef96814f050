import express from 'express';
import { z } from 'zod';
import { requestContext } from '../auth/audit-log.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { apiRoute } from '../http/api-routes.ts';
import { validate } from '../http/validate.ts';
import { StatusResponse } from '../auth/auth-responses.ts';
import { PasswordResetBody, PasswordResetConfirmBody, VerifyEmailBody } from './recovery-schemas.ts';
import type { RecoveryService } from './recovery-service.ts';

const EmptyBody = z.object({}).strict();

/** `/api/auth/password-reset*` and `/api/auth/email-verification*`. */
export function createRecoveryRouter(deps: { recovery: RecoveryService }): express.Router {
  const { recovery } = deps;
  const api = express.Router();

  apiRoute(api, { method: 'post', path: '/auth/password-reset', summary: 'Email a single-use password-reset link (202 whatever the address: no account enumeration)', auth: 'none', request: { body: PasswordResetBody }, responses: { 202: StatusResponse } }, async (req, res) => {
    const { email } = validate(PasswordResetBody, req);
    const { work } = await recovery.requestReset(email, requestContext(req));
    res.status(202).json({ status: 'accepted', detail: 'If an account uses this address, an email with a reset link is on its way.' });
    await work; // after answering: the same response and timing for every address
  });

  apiRoute(api, { method: 'post', path: '/auth/password-reset/confirm', summary: 'Set a new password with a reset link token; signs out every session', auth: 'none', request: { body: PasswordResetConfirmBody }, responses: { 200: StatusResponse } }, async (req, res) => {
    const body = validate(PasswordResetConfirmBody, req);
    await recovery.confirmReset(body.token, body.password, requestContext(req));
    res.json({ status: 'password_changed', detail: 'Your password was changed and every session signed out. Log in with the new password.' });
  });

  apiRoute(api, { method: 'post', path: '/auth/email-verification', summary: 'Send a new email verification link', auth: 'user', request: { body: EmptyBody }, responses: { 202: StatusResponse } }, requireAuth, async (req, res) => {
    validate(EmptyBody, req);
    const sent = await recovery.resendVerification(req.user!);
    res.status(202).json({ status: sent ? 'accepted' : 'already_verified' });
  });

  apiRoute(api, { method: 'post', path: '/auth/email-verification/confirm', summary: 'Verify the email address with the link token', auth: 'none', request: { body: VerifyEmailBody }, responses: { 200: StatusResponse } }, async (req, res) => {
    const { token } = validate(VerifyEmailBody, req);
    await recovery.verifyEmail(token);
    res.json({ status: 'verified' });
  });

  return api;
}
