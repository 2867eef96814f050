import express from 'express';
import { requireAuth } from '../auth/auth-middleware.ts';
import type { Config } from '../config.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { requireCredits } from './require-credits.ts';
import { apiRoute } from '../http/api-routes.ts';
import { z } from 'zod';

/** What the bench's priced route costs: 1 credit, in millicredits. */
export const BENCH_PRICE_MILLICREDITS = 1000;

/**
 * Bench-only routes, mounted under /api only when `BENCH_ROUTES=on` (`npm run bench` turns it on
 * for the server it starts; see bench/http-bench.ts):
 * - `GET /api/bench/noop` → 204 for a signed-in user: the cost of an authenticated request.
 * - `POST /api/bench/priced` → 200 `{charged}`: a synchronous priced route through
 *   {@link requireCredits} with its price known up front (`settle: 'one-commit'`), 1 credit per request.
 */
export function createBenchRouter(deps: { ledger: Ledger; config: Pick<Config, 'appUrl'> }): express.Router {
  const router = express.Router();
  apiRoute(router, { method: 'get', path: '/bench/noop', summary: 'Bench only (BENCH_ROUTES=on): an authenticated request that does nothing', auth: 'user', responses: { 204: { description: 'Nothing.' } } }, requireAuth, (_req, res) => {
    res.status(204).end();
  });
  apiRoute(
    router,
    { method: 'post', path: '/bench/priced', summary: 'Bench only (BENCH_ROUTES=on): a priced route charging 1 credit', auth: 'user', responses: { 200: z.object({ charged: z.number() }) } },
    requireAuth,
    requireCredits(() => BENCH_PRICE_MILLICREDITS, { ledger: deps.ledger, topUpUrl: `${deps.config.appUrl}/pricing`, settle: 'one-commit', reason: 'bench' }),
    (_req, res) => {
      res.json({ charged: millicreditsToCredits(BENCH_PRICE_MILLICREDITS) });
    },
  );
  return router;
}
