import type { RequestHandler } from 'express';
import { ForbiddenError } from './errors.ts';

/**
 * Refuses state-changing API requests whose `Origin` header is present and is not the app's own
 * origin (cross-site requests; SameSite=Lax cookies are the other half of the defence). Clients
 * that send no Origin, such as scripts and curl, pass. Safe methods always pass.
 */
export function originCheck(appUrl: string, extraOrigins: string[] = []): RequestHandler {
  const allowed = new Set([new URL(appUrl).origin, ...extraOrigins]);
  return (req, _res, next) => {
    if (['GET', 'HEAD', 'OPTIONS'].includes(req.method)) return next();
    const origin = req.get('Origin');
    if (origin === undefined || allowed.has(origin)) return next();
    next(new ForbiddenError(`Requests from ${origin} are not accepted.`, 'origin_not_allowed'));
  };
}
