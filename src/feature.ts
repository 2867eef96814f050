import type { Router } from 'express';

/**
 * A feature's routers, built from the services by its `create…Feature(services)` factory. `raw`
 * is mounted before the body parsers (e.g. the Stripe webhook, which needs the raw body), `api`
 * under `/api`, `pages` at the root.
 */
export interface Feature {
  raw?: Router;
  api?: Router;
  pages?: Router;
}
