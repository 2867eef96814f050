import crypto from 'node:crypto';
import express, { type Request, type RequestHandler } from 'express';
import { sendProblem } from '../http/problem.ts';
import { AppError } from '../http/errors.ts';
import type { Metrics } from './metrics.ts';

/**
 * Times every request into `tally_http_request_duration_seconds` labelled by the route *pattern*
 * that answered (`/api/tasks/:id`, never the raw URL, so the label set stays bounded) and status.
 *
 * The pattern is taken when Express assigns `req.route` (then `req.baseUrl` is the router's mount
 * path); reading both when the response finishes is wrong for errors, because routers restore
 * `baseUrl` on their way out. Requests no route answered (404s, static files) are `unmatched`.
 */
export function httpMetrics(metrics: Pick<Metrics, 'httpRequestDuration'>): RequestHandler {
  return (req, res, next) => {
    const end = metrics.httpRequestDuration.startTimer();
    let route: unknown;
    let pattern: string | undefined;
    Object.defineProperty(req, 'route', {
      configurable: true,
      enumerable: true,
      get: () => route,
      set(value: { path?: unknown } | undefined) {
        route = value;
        if (value && typeof value.path === 'string') pattern = `${req.baseUrl}${value.path}`;
      },
    });
    res.once('finish', () => {
      end({ method: req.method, route: pattern ?? (req.path.startsWith('/static/') ? '/static' : 'unmatched'), status: String(res.statusCode) });
    });
    next();
  };
}

/** True when `given` equals `expected`, compared in constant time (hashes of equal length). */
function sameSecret(given: string, expected: string): boolean {
  const a = crypto.createHash('sha256').update(given).digest();
  const b = crypto.createHash('sha256').update(expected).digest();
  return crypto.timingSafeEqual(a, b);
}

function bearerToken(req: Request): string | undefined {
  const header = req.get('authorization');
  const m = header ? /^Bearer\s+(\S+)\s*$/i.exec(header) : null;
  return m?.[1];
}

/**
 * `GET /metrics` in Prometheus text format, for a scraper holding `token` (`METRICS_TOKEN`) as a
 * bearer token. Without a token configured the route does not exist (404); a missing or wrong
 * token is a 401 problem+json with `WWW-Authenticate: Bearer`.
 */
export function createMetricsRouter(metrics: Metrics, token: string | undefined): express.Router {
  const router = express.Router();
  if (!token) return router;
  router.get('/metrics', async (req, res) => {
    const given = bearerToken(req);
    if (!given || !sameSecret(given, token)) {
      sendProblem(res, new AppError(401, 'unauthorized', 'Unauthorized', 'A valid bearer token (METRICS_TOKEN) is required.', {}, { 'WWW-Authenticate': 'Bearer realm="metrics"' }));
      return;
    }
    res.set('Cache-Control', 'no-store').type(metrics.registry.contentType).send(await metrics.registry.metrics());
  });
  return router;
}
