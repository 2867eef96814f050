import { redirectAfterSave } from '../notifications/redirect-after-flash.ts';
import express from 'express';
import { requestContext } from '../auth/audit-log.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { fieldErrorsOf, formBody } from '../auth/page-forms.ts';
import { passwordRequirements } from '../auth/passwords.ts';
import { setFlash } from '../auth/session.ts';
import { AppError, ValidationError } from '../http/errors.ts';
import { parseOrThrow } from '../http/validate.ts';
import { PasswordResetBody, PasswordResetConfirmBody, Token } from './recovery-schemas.ts';
import type { RecoveryService } from './recovery-service.ts';

const tokenOf = (v: unknown) => (Token.safeParse(v).success ? (v as string) : undefined);

/**
 * /forgot-password, /reset-password (from the emailed link), /verify-email (the verification
 * link shows a confirm button; the POST verifies) and POST /account/verify-email (a new link).
 */
export function createRecoveryPages(deps: { recovery: RecoveryService }): express.Router {
  const { recovery } = deps;
  const pages = express.Router();

  pages.get('/forgot-password', (_req, res) => {
    res.render('recovery/forgot', { title: 'Forgot your password?', values: {}, errors: {}, formError: undefined, sent: undefined });
  });

  pages.post('/forgot-password', async (req, res) => {
    const fields = formBody(req);
    const values = { email: typeof fields.email === 'string' ? fields.email : '' };
    try {
      const { email } = parseOrThrow(PasswordResetBody, fields, 'body');
      const { work } = await recovery.requestReset(email, requestContext(req));
      res.status(202).render('recovery/forgot', { title: 'Check your email', values, errors: {}, formError: undefined, sent: email });
      await work;
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (errors) return res.status(400).render('recovery/forgot', { title: 'Forgot your password?', values, errors, formError: undefined, sent: undefined });
      if (err instanceof AppError && err.status === 429) {
        for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
        return res.status(429).render('recovery/forgot', { title: 'Forgot your password?', values, errors: {}, formError: err.detail, sent: undefined });
      }
      throw err;
    }
  });

  pages.get('/reset-password', async (req, res) => {
    const token = tokenOf(req.query.token);
    const usable = token ? await recovery.isResetTokenUsable(token) : false;
    res.status(usable ? 200 : 400).render('recovery/reset', { title: 'Choose a new password', token, usable, errors: {}, requirements: passwordRequirements() });
  });

  pages.post('/reset-password', async (req, res) => {
    const fields = formBody(req);
    const token = tokenOf(fields.token);
    try {
      const body = parseOrThrow(PasswordResetConfirmBody, fields, 'body');
      await recovery.confirmReset(body.token, body.password, requestContext(req));
      // Every session was revoked, this browser's too: start it afresh (signed out) for the flash message.
      delete req.user;
      await new Promise<void>((resolve, reject) => req.session.regenerate((err) => (err ? reject(err) : resolve())));
      setFlash(req, { type: 'success', message: 'Your password was changed and every session signed out. Log in with your new password.' });
      await redirectAfterSave(req, res, '/login');
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (!errors) throw err;
      const usable = !errors.token;
      res.status(400).render('recovery/reset', { title: 'Choose a new password', token, usable, errors, requirements: passwordRequirements() });
    }
  });

  pages.get('/verify-email', (req, res) => {
    const token = tokenOf(req.query.token);
    res.status(token ? 200 : 400).render('recovery/verify', { title: 'Confirm your email address', token, outcome: token ? 'ask' : 'invalid' });
  });

  pages.post('/verify-email', async (req, res) => {
    const token = tokenOf(formBody(req).token);
    try {
      if (!token) throw new ValidationError([{ field: 'body.token', message: 'is missing' }]);
      await recovery.verifyEmail(token);
      res.render('recovery/verify', { title: 'Email address verified', token, outcome: 'verified' });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      res.status(400).render('recovery/verify', { title: 'Confirm your email address', token, outcome: 'invalid' });
    }
  });

  pages.post('/account/verify-email', requireAuth, async (req, res) => {
    const sent = await recovery.resendVerification(req.user!);
    setFlash(req, { type: 'success', message: sent ? `We sent a new link to ${req.user!.email}.` : 'Your email address is already verified.' });
    await redirectAfterSave(req, res, '/account#verification');
  });

  return pages;
}
