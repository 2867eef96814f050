import express, { type Request, type Response } from 'express';
import type { Config } from '../config.ts';
import type { Growth } from '../growth/growth-service.ts';
import { AppError, ConflictError } from '../http/errors.ts';
import { formatCredits } from '../ledger/credits.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { parseOrThrow } from '../http/validate.ts';
import { requestContext } from './audit-log.ts';
import { LoginBody, SignupBody } from './auth-schemas.ts';
import type { AuthService } from './auth-service.ts';
import { fieldErrorsOf, formBody, safeNextPath } from './page-forms.ts';
import { passwordRequirements } from './passwords.ts';
import { endSession, establishSession, setFlash, takeFlash } from './session.ts';

/**
 * The /signup and /login pages and POST /logout. Forms post back to these routes (CSRF token
 * checked by app.ts), call the same service as the API, and redirect (303) to a safe `next`
 * on success or re-render with inline errors (400 invalid, 401 wrong credentials, 409 email taken,
 * 429 throttled).
 */
export function createAuthPages(deps: { auth: AuthService; config: Readonly<Config>; growth: Pick<Growth, 'signup'> }): express.Router {
  const { auth, config, growth } = deps;
  const pages = express.Router();

  function render(req: Request, res: Response, view: 'signup' | 'login', status: number, locals: Record<string, unknown>) {
    res.status(status).render(`auth/${view}`, {
      title: view === 'signup' ? 'Sign up' : 'Log in',
      values: {},
      errors: {},
      formError: undefined,
      flash: takeFlash(req),
      requirements: passwordRequirements(),
      ...locals,
    });
  }

  const signupBonus = { credits: formatCredits(config.signupBonus.millicredits), days: config.signupBonus.days, any: config.signupBonus.millicredits > 0 };
  const nextOf = (req: Request) => (typeof req.query.next === 'string' ? safeNextPath(req.query.next) : undefined);

  pages.get('/signup', (req, res) => {
    if (req.user) return res.redirect(303, nextOf(req) ?? '/tasks');
    render(req, res, 'signup', 200, { next: nextOf(req), signupBonus });
  });

  pages.post('/signup', async (req, res) => {
    const { next, ...fields } = formBody(req);
    const nextPath = typeof next === 'string' && next !== '' ? safeNextPath(next) : undefined;
    const values = { email: fields.email, name: fields.name, promoCode: fields.promoCode };
    try {
      const body = parseOrThrow(SignupBody, fields, 'body');
      const ctx = requestContext(req);
      const { user } = await auth.signup(body, ctx, growth.signup.extrasOf(req, res));
      growth.signup.done(res);
      await establishSession(req, user);
      const promo = body.promoCode ? await growth.signup.redeem(user, body.promoCode, ctx) : undefined;
      const promoNote = !promo ? '' : promo.redeemed ? ` Your promo code added ${formatCredits(promo.lot.amount)} credits.` : ` Your promo code was not applied: ${promo.detail}`;
      const bonus = config.signupBonus;
      // Land where the first job is one step away (issue 10), unless the visitor came for something else.
      const expires = new Date(Date.now() + bonus.days * 86_400_000);
      setFlash(req, {
        type: 'success',
        message:
          bonus.millicredits > 0
            ? `Welcome to Tally! Your ${formatCredits(bonus.millicredits)} free credits are ready until ${viewHelpers.date(expires)} (${bonus.days} days). Upload a scan or a PDF below to run your first job.${promoNote}`
            : `Welcome to Tally! Upload a scan or a PDF below to run your first job.${promoNote}`,
      });
      res.redirect(303, nextPath ?? '/tasks');
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (errors) return render(req, res, 'signup', 400, { values, errors, next: nextPath, signupBonus });
      if (err instanceof ConflictError) {
        return render(req, res, 'signup', 409, { values, errors: { email: err.detail }, next: nextPath, signupBonus });
      }
      throw err;
    }
  });

  pages.get('/login', (req, res) => {
    if (req.user) return res.redirect(303, nextOf(req) ?? '/account');
    render(req, res, 'login', 200, { next: nextOf(req) });
  });

  pages.post('/login', async (req, res) => {
    const { next, ...fields } = formBody(req);
    const nextPath = typeof next === 'string' && next !== '' ? safeNextPath(next) : undefined;
    const values = { email: fields.email };
    try {
      const body = parseOrThrow(LoginBody, fields, 'body');
      const { user } = await auth.login(body, requestContext(req));
      await establishSession(req, user);
      res.redirect(303, nextPath ?? '/account');
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (errors) return render(req, res, 'login', 400, { values, errors, next: nextPath });
      if (err instanceof AppError && (err.status === 401 || err.status === 429)) {
        for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
        return render(req, res, 'login', err.status, { values, formError: err.detail, next: nextPath });
      }
      throw err;
    }
  });

  pages.post('/logout', async (req, res) => {
    if (req.user) await auth.loggedOut(req.user, requestContext(req));
    await endSession(req, res, config);
    res.redirect(303, '/');
  });

  return pages;
}
