import type { RequestHandler } from 'express';
import type { Db } from '../db/database.ts';
import { ForbiddenError, UnauthorizedError } from '../http/errors.ts';
import { wantsJson } from '../http/problem.ts';
import { sessionUser } from './session-store.ts';
import { findCurrentUser } from './users-store.ts';
import './auth-types.ts';

/**
 * Loads `req.user` from the session's `userId` (and drops a session whose user is gone): the one
 * read of the signed-in user per request; everything after uses `req.user`. Usually no query at
 * all: the session store read the user with the session ({@link sessionUser}); only when the
 * session's `userId` changed since (or the session did not come from the store) is it read here.
 */
export function loadUser(db: Db): RequestHandler {
  return async (req, _res, next) => {
    const id = req.session?.userId;
    if (id) {
      const read = sessionUser(req);
      req.user = read && read.userId === id ? read.user : await findCurrentUser(db, id);
      if (!req.user) delete req.session.userId;
    }
    next();
  };
}

/** 401 problem+json for API calls, a redirect to /login for pages, unless signed in. */
export const requireAuth: RequestHandler = (req, res, next) => {
  if (req.user) return next();
  if (wantsJson(req)) return next(new UnauthorizedError());
  res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
};

/** Like {@link requireAuth}, then 403 unless the user is an admin. */
export const requireAdmin: RequestHandler = (req, res, next) => {
  requireAuth(req, res, (err?: unknown) => {
    if (err) return next(err);
    if (req.user?.role !== 'admin') return next(new ForbiddenError('Admins only.'));
    next();
  });
};
