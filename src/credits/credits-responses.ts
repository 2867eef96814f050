import { z } from 'zod';

/**
 * zod schemas of the credits JSON the API returns (credits-json.ts), for the OpenAPI document
 * (src/http/api-routes.ts) and the tests that check responses against it. Kinds and sources are
 * plain strings: new ones are added over time and must not break clients that read them.
 */

/** Credits: a JSON number with at most 3 decimals. */
export const Credits = z.number().describe('Credits (at most 3 decimals)');
export const DateTime = z.iso.datetime({ offset: true });

/** Not a named component: zod-to-openapi 9 drops `null` from a nullable $ref (so it is inlined). */
export const ReferenceJson = z.object({ type: z.string(), id: z.string() });

export const LotJson = z
  .object({
    id: z.string(),
    source: z.string().describe('purchase, signup_bonus, bonus, subscription_grant, adjustment, …'),
    amount: Credits,
    remaining: Credits,
    expiresAt: DateTime.nullable(),
  })
  .meta({ id: 'Lot' });

export const HoldJson = z
  .object({ id: z.string(), amount: Credits, expiresAt: DateTime, reason: z.string().nullable(), reference: ReferenceJson.nullable() })
  .meta({ id: 'Hold' });

export const BalanceJson = z
  .object({ available: Credits, held: Credits, debt: Credits, lots: z.array(LotJson), holds: z.array(HoldJson) })
  .meta({ id: 'Balance' });

export const TransferJson = z
  .object({
    id: z.string(),
    kind: z.string().describe('purchase, signup_bonus, bonus, subscription_grant, adjustment, usage, refund_clawback, expiry, …'),
    amount: Credits.describe('Signed: positive came in, negative went out'),
    balanceAfter: Credits.nullable(),
    reason: z.string().nullable(),
    reference: ReferenceJson.nullable(),
    holdId: z.string().nullable(),
    createdAt: DateTime,
    actor: z.string().optional(),
  })
  .meta({ id: 'Transfer' });

/** The API key that placed the hold behind a transfer (`/api/credits/transfers`), or null. */
export const TransferApiKey = z.object({ name: z.string(), prefix: z.string() }).nullable();

export const TransfersPage = z.object({ transfers: z.array(TransferJson.extend({ apiKey: TransferApiKey.optional() })), nextCursor: z.string().nullable() });

export const PricesResponse = z.object({
  prices: z.array(
    z.object({
      operation: z.string(),
      name: z.string(),
      baseCredits: Credits,
      perUnitCredits: Credits,
      unit: z.string(),
      unitPrices: z.array(z.object({ kind: z.string(), name: z.string(), credits: Credits })),
    }),
  ),
});

export const EstimateResponse = z.object({
  operation: z.string(),
  credits: Credits,
  pages: z.number().int(),
  kind: z.string().optional(),
  mimeType: z.string().optional(),
});
