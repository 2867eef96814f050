import express from 'express';
import { z } from 'zod';
import type { Config } from '../config.ts';
import { balanceJson, lotJson } from '../credits/credits-json.ts';
import type { Growth } from '../growth/growth-service.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { apiRoute } from '../http/api-routes.ts';
import { validate } from '../http/validate.ts';
import { requestContext } from './audit-log.ts';
import { requireAuth } from './auth-middleware.ts';
import { LoginBody, SessionIdParams, SignupBody } from './auth-schemas.ts';
import { PasswordRequirementsJson, SessionsResponse, UserWithBalance } from './auth-responses.ts';
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

  apiRoute(api, { method: 'get', path: '/auth/password-requirements', summary: 'The password policy, for forms', auth: 'none', responses: { 200: PasswordRequirementsJson } }, (_req, res) => {
    res.json(passwordRequirements());
  });

  apiRoute(api, { method: 'post', path: '/auth/signup', summary: 'Create an account, start a session and grant the sign-up credits once', auth: 'none', request: { body: SignupBody }, responses: { 201: UserWithBalance } }, async (req, res) => {
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

  apiRoute(api, { method: 'post', path: '/auth/login', summary: 'Sign in (a new session id); throttled', auth: 'none', request: { body: LoginBody }, responses: { 200: UserWithBalance } }, async (req, res) => {
    const body = validate(LoginBody, req);
    const { user, balance } = await auth.login(body, requestContext(req));
    await establishSession(req, user);
    res.json({ user: userJson(user), balance: balanceJson(balance) });
  });

  apiRoute(api, { method: 'post', path: '/auth/logout', summary: 'Sign out: destroys the session', auth: 'optional', responses: { 204: { description: 'Signed out.' } } }, async (req, res) => {
    if (req.user) await auth.loggedOut(req.user, requestContext(req));
    await endSession(req, res, config);
    res.status(204).end();
  });

  apiRoute(api, { method: 'get', path: '/auth/me', summary: 'The signed-in user and their balance', auth: 'user', responses: { 200: UserWithBalance } }, requireAuth, async (req, res) => {
    const user = req.user!;
    res.json({ user: userJson(user), balance: balanceJson(await ledger.getBalance(user.id)) });
  });

  apiRoute(api, { method: 'get', path: '/auth/sessions', summary: 'Your active sessions', auth: 'user', responses: { 200: SessionsResponse } }, requireAuth, async (req, res) => {
    res.json({ sessions: await sessions.listSessions(req.user!.id, req.sessionID) });
  });

  apiRoute(api, { method: 'post', path: '/auth/sessions/revoke-others', summary: 'End all your other sessions', auth: 'user', request: { body: EmptyBody }, responses: { 200: z.object({ revoked: z.number().int() }) } }, requireAuth, async (req, res) => {
    validate(EmptyBody, req);
    const revoked = await sessions.revokeOtherSessions(req.user!, req.sessionID, requestContext(req));
    res.json({ revoked });
  });

  apiRoute(api, { method: 'delete', path: '/auth/sessions/:id', summary: 'End one of your sessions', auth: 'user', request: { params: SessionIdParams }, responses: { 204: { description: 'Ended.' } } }, requireAuth, async (req, res) => {
    const { id } = validate(SessionIdParams, req, 'params');
    const { current } = await sessions.revokeSession(req.user!, id, req.sessionID, requestContext(req));
    if (current) await endSession(req, res, config);
    res.status(204).end();
  });

  return api;
}
