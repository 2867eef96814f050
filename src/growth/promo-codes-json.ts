import { millicreditsToCredits } from '../ledger/credits.ts';
import type { PromoCode } from './promo-codes-store.ts';

/** A promo code at the API's edge: credits, ISO dates, how many redemptions are left. */
export function promoCodeJson(c: PromoCode) {
  return {
    id: c.id,
    code: c.code,
    credits: millicreditsToCredits(c.millicredits),
    creditsExpireDays: c.creditsExpireDays,
    validFrom: c.validFrom?.toISOString() ?? null,
    validUntil: c.validUntil?.toISOString() ?? null,
    maxRedemptions: c.maxRedemptions,
    perUserLimit: c.perUserLimit,
    newUsersOnly: c.newUsersOnly,
    redemptions: c.redemptionCount,
    active: c.deactivatedAt === null,
    createdAt: c.createdAt.toISOString(),
    deactivatedAt: c.deactivatedAt?.toISOString() ?? null,
  };
}
