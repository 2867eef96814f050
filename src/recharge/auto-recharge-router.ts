import express from 'express';
import { z } from 'zod';
import { requireAuth } from '../auth/auth-middleware.ts';
import { schemas, validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import { AutoRechargeJson } from './auto-recharge-responses.ts';
import { creditsToMillicredits, millicreditsToCredits } from '../ledger/credits.ts';
import type { AutoRecharge } from './auto-recharge-service.ts';

/** `PUT /api/credits/auto-recharge`: a saved card (Stripe PaymentMethod id), threshold in credits, the pack, guardrails. */
export const AutoRechargeBody = z
  .object({
    paymentMethodId: z.string().min(3).max(255).regex(/^pm_\w+$/, 'must be a Stripe PaymentMethod id (pm_…)'),
    threshold: schemas.credits.transform((v, ctx) => {
      try {
        return creditsToMillicredits(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message.replace(/^.* is not a valid amount of credits: /, 'must be a valid amount of credits: ') });
        return z.NEVER;
      }
    }),
    packageId: z.string().min(1).max(100),
    maxPerDay: z.number().int().min(1).max(100).optional(),
    monthlyCeilingCents: z.number().int().min(1).max(99_999_999).optional(),
  })
  .strict();

/**
 * The auto-recharge form on /account/settings/credits: turn on (or save) with the saved card,
 * or turn off. The monthly ceiling is typed in the pack's currency (e.g. `125` or `125.50`).
 */
export const AutoRechargeForm = z
  .object({
    action: z.enum(['on', 'off']),
    threshold: AutoRechargeBody.shape.threshold.optional(),
    packageId: z.string().min(1).max(100).optional(),
    maxPerDay: z.coerce.number({ error: 'must be a whole number from 1 to 100' }).int('must be a whole number').min(1, 'must be at least 1').max(100, 'must be at most 100').optional(),
    monthlyCeiling: z
      .string()
      .trim()
      .regex(/^\d{1,6}(\.\d{1,2})?$/, 'must be an amount such as 125 or 125.50')
      .transform((v) => Math.round(Number(v) * 100))
      .optional(),
  })
  .strict();

/** An overview as JSON (credits, minor units, ISO dates). */
export function autoRechargeJson(o: Awaited<ReturnType<AutoRecharge['overview']>>) {
  const s = o.settings;
  return {
    enabled: s?.enabled ?? false,
    card: s?.payment_method_id ? { brand: s.card_brand, last4: s.card_last4 } : null,
    threshold: s ? millicreditsToCredits(Number(s.threshold_millicredits)) : null,
    packageId: s?.package_id ?? null,
    maxPerDay: s?.max_per_day ?? null,
    monthlyCeilingCents: s ? Number(s.monthly_ceiling_cents) : null,
    consecutiveFailures: s?.consecutive_failures ?? 0,
    disabledReason: s?.disabled_reason ?? null,
    nextAllowedAt: o.nextAllowedAt?.toISOString() ?? null,
    recharges: o.recharges.map((r) => ({
      id: r.id,
      status: r.status,
      amountCents: Number(r.amount_cents),
      currency: r.currency,
      failureCode: r.failure_code,
      createdAt: r.created_at.toISOString(),
      completedAt: r.completed_at?.toISOString() ?? null,
    })),
  };
}

/** `GET/PUT /api/credits/auto-recharge`, `DELETE /api/credits/auto-recharge/card` (signed in). */
export function createAutoRechargeRouter(deps: { autoRecharge: AutoRecharge }): express.Router {
  const { autoRecharge } = deps;
  const api = express.Router();
  apiRoute(api, { method: 'get', path: '/credits/auto-recharge', summary: 'Your auto-recharge settings, saved card and recent recharges', auth: 'user', responses: { 200: AutoRechargeJson } }, requireAuth, async (req, res) => {
    res.json(autoRechargeJson(await autoRecharge.overview(req.user!.id)));
  });
  apiRoute(api, { method: 'put', path: '/credits/auto-recharge', summary: 'Turn on auto-recharge: a saved card, a threshold in credits, the pack, and guardrails', auth: 'user', request: { body: AutoRechargeBody }, responses: { 200: AutoRechargeJson } }, requireAuth, async (req, res) => {
    const body = validate(AutoRechargeBody, req);
    await autoRecharge.enable(req.user!, { ...body, thresholdMillicredits: body.threshold });
    res.json(autoRechargeJson(await autoRecharge.overview(req.user!.id)));
  });
  apiRoute(api, { method: 'delete', path: '/credits/auto-recharge/card', summary: 'Remove the saved card (turns auto-recharge off)', auth: 'user', responses: { 200: AutoRechargeJson } }, requireAuth, async (req, res) => {
    await autoRecharge.removeCard(req.user!.id);
    res.json(autoRechargeJson(await autoRecharge.overview(req.user!.id)));
  });
  return api;
}
