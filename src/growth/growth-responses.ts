import { z } from 'zod';
import { BalanceJson, Credits, DateTime, LotJson } from '../credits/credits-responses.ts';

/** zod schemas of the growth JSON the API returns (promo codes, gifts, gift packs, referrals), for the OpenAPI document. */

/** A promo code at the API's edge (promo-codes-json.ts). */
export const PromoCodeJson = z.object({
  id: z.uuid(),
  code: z.string(),
  credits: Credits,
  creditsExpireDays: z.number().int().nullable(),
  validFrom: DateTime.nullable(),
  validUntil: DateTime.nullable(),
  maxRedemptions: z.number().int().nullable(),
  perUserLimit: z.number().int(),
  newUsersOnly: z.boolean(),
  redemptions: z.number().int(),
  active: z.boolean(),
  createdAt: DateTime,
  deactivatedAt: DateTime.nullable(),
});
export const PromoCodeResponse = z.object({ promoCode: PromoCodeJson });
export const PromoCodesResponse = z.object({ promoCodes: z.array(PromoCodeJson) });

/** A redeemed promo or gift-pack code: the lot it granted and the balance after. */
export const RedeemResponse = z.object({ lot: LotJson, balance: BalanceJson });

/** A gift the user sent (gifts-service.ts `giftJson`); the claim link is never returned. */
export const GiftJson = z.object({
  id: z.uuid(),
  toEmail: z.string(),
  credits: Credits,
  message: z.string().nullable(),
  status: z.enum(['delivered', 'pending_claim', 'claimed', 'returned']),
  claimExpiresAt: DateTime.nullable(),
  creditsExpireAt: DateTime.nullable(),
  createdAt: DateTime,
});
export const GiftSentResponse = z.object({ gift: GiftJson, balance: z.object({ available: Credits }) });
export const GiftsResponse = z.object({ gifts: z.array(GiftJson) });
export const GiftClaimedResponse = z.object({ gift: GiftJson, lot: LotJson, balance: BalanceJson });

/** The gift codes a user bought (gift-packs-service.ts `listBought`), newest first (at most 20). */
export const GiftCodesResponse = z.object({
  giftCodes: z.array(
    z.object({
      code: z.string(),
      credits: z.string().describe('Credits still on the code, as a decimal string (at most 3 decimals)'),
      redeemed: z.boolean(),
      void: z.boolean().describe('Refunded in full'),
      issuedAt: DateTime,
    }),
  ),
});

export const ReferralsResponse = z.object({
  code: z.string(),
  link: z.string(),
  referred: z.number().int(),
  rewarded: z.number().int(),
  creditsEarned: Credits,
});
