import express, { type RequestHandler } from 'express';
import { z } from 'zod';
import { requireAuth } from '../auth/auth-middleware.ts';
import type { Feature } from '../feature.ts';
import { apiRoute } from '../http/api-routes.ts';
import { validate } from '../http/validate.ts';
import { EstimateResponse, PricesResponse } from './credits-responses.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Services } from '../services.ts';
import { uploadDocument, uploadedFile } from '../tasks/task-upload.ts';
import { OCR_OPERATION } from '../tasks/task-pricing.ts';
import { MAX_UNITS } from './pricing-service.ts';
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

/** Runs `middleware` for multipart requests only; JSON requests go straight to the handler. */
function forMultipart(middleware: RequestHandler): RequestHandler {
  return (req, res, next) => (req.is('multipart/form-data') ? middleware(req, res, next) : next());
}

/**
 * Operation prices and estimates: `GET /api/credits/prices`; `POST /api/credits/estimate` with
 * JSON `{operation, pages}` → `{operation, credits, pages}` (what a job will hold before it runs),
 * or (signed in) with a multipart `file` → `{operation, credits, pages, kind, mimeType}`, the
 * document's pages counted by the tasks service. One route, one handler, both forms.
 */
export function createPricingFeature(services: Services): Feature {
  const { pricing, tasks, config } = services;
  const api = express.Router();
  apiRoute(api, { method: 'get', path: '/credits/prices', summary: 'Operation prices, with what each kind of unit costs', auth: 'none', responses: { 200: PricesResponse } }, async (_req, res) => {
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
  const upload = uploadDocument(config.tasks.maxUploadBytes);
  apiRoute(
    api,
    {
      method: 'post',
      path: '/credits/estimate',
      summary: 'What a job will hold: JSON `{operation, pages}` (public), or, signed in, a multipart `file` whose pages are counted',
      auth: 'optional',
      request: { body: EstimateBody },
      responses: { 200: EstimateResponse },
    },
    forMultipart(requireAuth),
    forMultipart(upload),
    async (req, res) => {
    if (req.is('multipart/form-data')) {
      const estimate = await tasks.estimate(uploadedFile(req).bytes);
      res.json({
        operation: OCR_OPERATION,
        credits: millicreditsToCredits(estimate.millicredits),
        pages: estimate.pages,
        kind: estimate.kind,
        mimeType: estimate.mimeType,
      });
      return;
    }
    const body = validate(EstimateBody, req);
    const { millicredits } = await pricing.estimate(body.operation, body.pages);
    res.json({ operation: body.operation, credits: millicreditsToCredits(millicredits), pages: body.pages });
    },
  );
  return { api };
}
