import express from 'express';
import { z } from 'zod';
import type { AppDeps, Feature } from '../app.ts';
import { validate } from '../http/validate.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { createPricing, MAX_UNITS } from './pricing-service.ts';
import type { OperationPrice } from './pricing-store.ts';

const EstimateBody = z
  .object({
    operation: z.string().min(1).max(64).default('ocr'),
    pages: z.coerce.number().int().min(1).max(MAX_UNITS),
  })
  .strict();

/** JSON form of a price: credits, not millicredits. */
export function priceJson(p: OperationPrice) {
  return {
    operation: p.operation,
    name: p.name,
    baseCredits: millicreditsToCredits(p.baseMillicredits),
    perUnitCredits: millicreditsToCredits(p.perUnitMillicredits),
    unit: p.unit,
  };
}

/**
 * Operation prices and estimates: `GET /api/credits/prices`, `POST /api/credits/estimate
 * {operation, pages}` → `{operation, credits, pages}` (what a job will hold before it runs).
 * (The multipart form of the estimate, with an uploaded file, is added by the tasks feature.)
 */
export function createPricingFeature(deps: AppDeps): Feature {
  const pricing = createPricing(deps.db);
  const api = express.Router();
  api.get('/credits/prices', async (_req, res) => {
    const components = await pricing.components();
    res.json({
      prices: (await pricing.list()).map((p) => ({
        ...priceJson(p),
        // what each kind of unit costs (OCR: a page read by OCR, from its text layer, blank);
        // `perUnitCredits` is the dearest, what an estimate holds
        unitPrices: components
          .filter((c) => c.operation === p.operation)
          .map((c) => ({ kind: c.component, name: c.name, credits: millicreditsToCredits(c.millicredits) })),
      })),
    });
  });
  api.post('/credits/estimate', async (req, res, next) => {
    if (req.is('multipart/form-data')) return next(); // handled by the tasks feature
    const body = validate(EstimateBody, req);
    const { millicredits } = await pricing.estimate(body.operation, body.pages);
    res.json({ operation: body.operation, credits: millicreditsToCredits(millicredits), pages: body.pages });
  });
  return { api };
}
