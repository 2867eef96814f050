import { z } from 'zod';
import { Credits, DateTime } from '../credits/credits-responses.ts';

/** zod schema of the auto-recharge overview the API returns (`autoRechargeJson`), for the OpenAPI document. */
export const AutoRechargeJson = z.object({
  enabled: z.boolean(),
  card: z.object({ brand: z.string().nullable(), last4: z.string().nullable() }).nullable(),
  threshold: Credits.nullable(),
  packageId: z.string().nullable(),
  maxPerDay: z.number().int().nullable(),
  monthlyCeilingCents: z.number().int().nullable(),
  consecutiveFailures: z.number().int(),
  disabledReason: z.string().nullable(),
  nextAllowedAt: DateTime.nullable(),
  recharges: z.array(
    z.object({
      id: z.string(),
      status: z.string(),
      amountCents: z.number().int(),
      currency: z.string(),
      failureCode: z.string().nullable(),
      createdAt: DateTime,
      completedAt: DateTime.nullable(),
    }),
  ),
});
