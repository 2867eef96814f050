import express from 'express';
import { z } from 'zod';
import type { Config } from '../config.ts';
import { balanceJson, lotJson } from '../credits/credits-json.ts';
import type { Growth } from '../growth/growth-service.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { validate } from '../http/validate.ts';
import { requestContext } from './audit-log.ts';
import { requireAuth } from './auth-middleware.ts';
import { LoginBody, SessionIdParams, SignupBody } from './auth-schemas.ts';
import { userJson, type AuthService } from './auth-service.ts';
import type { SessionsService } from './sessions-service.ts';
import { passwordRequirements } from './passwords.ts';
import { endSession, establishSession } from './session.ts';

/** Bodyless POSTs still refuse fields they do not take. */
const EmptyBody = z.object({}).strict();

/** `/api/auth/*`: sign-up, login, logout, the current user and their sessions. */
export function createAuthRouter(deps: { auth: AuthService; sessions: SessionsService; ledger: Ledger; config: Readonly<Config>; growth: Pick<Growth, 'signup'> }): express.Router {
  const { auth, sessions, ledger, config, growth } = deps;
  const api = express.Router();

  api.get('/auth/password-requirements', (_req, res) => {
    res.json(passwordRequirements());
  });

  api.post('/auth/signup', async (req, res) => {
    const body = validate(SignupBody, req);
    const ctx = requestContext(req);
    const { user, balance } = await auth.signup(body, ctx, growth.signup.extrasOf(req, res));
    growth.signup.done(res);
    await establishSession(req, user);
    // A promo code given at sign-up (issue 17): the account stands whether or not the code works.
    const promo = body.promoCode ? await growth.signup.redeem(user, body.promoCode, ctx) : undefined;
    res.status(201).json({
      user: userJson(user),
      balance: balanceJson(promo?.redeemed ? await ledger.getBalance(user.id) : balance),
      ...(promo ? { promoCode: promo.redeemed ? { redeemed: true, lot: lotJson(promo.lot) } : promo } : {}),
    });
  });

  api.post('/auth/login', async (req, res) => {
    const body = validate(LoginBody, req);
    const { user, balance } = await auth.login(body, requestContext(req));
    await establishSession(req, user);
    res.json({ user: userJson(user), balance: balanceJson(balance) });
  });

  api.post('/auth/logout', async (req, res) => {
    if (req.user) await auth.loggedOut(req.user, requestContext(req));
    await endSession(req, res, config);
    res.status(204).end();
  });

  api.get('/auth/me', requireAuth, async (req, res) => {
    const user = req.user!;
    res.json({ user: userJson(user), balance: balanceJson(await ledger.getBalance(user.id)) });
  });

  api.get('/auth/sessions', requireAuth, async (req, res) => {
    res.json({ sessions: await sessions.listSessions(req.user!.id, req.sessionID) });
  });

  api.post('/auth/sessions/revoke-others', requireAuth, async (req, res) => {
    validate(EmptyBody, req);
    const revoked = await sessions.revokeOtherSessions(req.user!, req.sessionID, requestContext(req));
    res.json({ revoked });
  });

  api.delete('/auth/sessions/:id', requireAuth, async (req, res) => {
    const { id } = validate(SessionIdParams, req, 'params');
    const { current } = await sessions.revokeSession(req.user!, id, req.sessionID, requestContext(req));
    if (current) await endSession(req, res, config);
    res.status(204).end();
  });

  return api;
}
