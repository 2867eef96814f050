import express from 'express';
import type { AppDeps, Feature } from '../app.ts';

/** Checkout, the Stripe webhook (raw body), payments, refunds; /pricing and /checkout pages. */
export function createPaymentsFeature(_deps: AppDeps): Feature {
  const raw = express.Router();
  const api = express.Router();
  const pages = express.Router();
  return { raw, api, pages };
}
