import express from 'express';
import { z } from 'zod';
import { requestContext } from '../auth/audit-log.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { validate } from '../http/validate.ts';
import { PasswordResetBody, PasswordResetConfirmBody, VerifyEmailBody } from './recovery-schemas.ts';
import type { RecoveryService } from './recovery-service.ts';

const EmptyBody = z.object({}).strict();

/** `/api/auth/password-reset*` and `/api/auth/email-verification*`. */
export function createRecoveryRouter(deps: { recovery: RecoveryService }): express.Router {
  const { recovery } = deps;
  const api = express.Router();

  api.post('/auth/password-reset', async (req, res) => {
    const { email } = validate(PasswordResetBody, req);
    const { work } = await recovery.requestReset(email, requestContext(req));
    res.status(202).json({ status: 'accepted', detail: 'If an account uses this address, an email with a reset link is on its way.' });
    await work; // after answering: the same response and timing for every address
  });

  api.post('/auth/password-reset/confirm', async (req, res) => {
    const body = validate(PasswordResetConfirmBody, req);
    await recovery.confirmReset(body.token, body.password, requestContext(req));
    res.json({ status: 'password_changed', detail: 'Your password was changed and every session signed out. Log in with the new password.' });
  });

  api.post('/auth/email-verification', requireAuth, async (req, res) => {
    validate(EmptyBody, req);
    const sent = await recovery.resendVerification(req.user!);
    res.status(202).json({ status: sent ? 'accepted' : 'already_verified' });
  });

  api.post('/auth/email-verification/confirm', async (req, res) => {
    const { token } = validate(VerifyEmailBody, req);
    await recovery.verifyEmail(token);
    res.json({ status: 'verified' });
  });

  return api;
}
