import type { AuditLog } from '../auth/audit-log.ts';
import type { RequestContext } from '../auth/auth-service.ts';
import type { CurrentUser } from '../auth/auth-types.ts';
import { inTransaction, isUniqueViolation, type Db } from '../db/database.ts';
import { ConflictError, ForbiddenError, NotFoundError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Lot } from '../ledger/ledger-types.ts';
import { GoneError } from './growth-errors.ts';
import { isGiftCode } from './gift-packs-service.ts';
import type { RedeemThrottle } from './growth-throttle.ts';
import * as store from './promo-codes-store.ts';
import type { PromoCode } from './promo-codes-store.ts';

export type PromoCodes = ReturnType<typeof createPromoCodes>;

/** What an admin gives to create a code (amounts in millicredits). */
export interface PromoCodeInput {
  code: string;
  millicredits: number;
  creditsExpireDays?: number | undefined;
  validFrom?: Date | undefined;
  validUntil?: Date | undefined;
  maxRedemptions?: number | undefined;
  perUserLimit: number;
  newUsersOnly: boolean;
}

/**
 * Promo codes (issue 17): admins create and deactivate them; users redeem them for a `promo` lot.
 * Every redemption of one code runs under that code's row lock, in the transaction that grants the
 * lot, so `maxRedemptions` and `perUserLimit` hold under any concurrency.
 */
export function createPromoCodes(deps: {
  db: Db;
  ledger: Ledger;
  audit: AuditLog;
  throttle: RedeemThrottle;
  /** Gift codes (`GIFT-…`, packs bought as gifts) share the redeem form, the API and the throttle. */
  giftCodes?: { redeem(user: CurrentUser, code: string): Promise<{ lot: Lot }> };
  clock?: () => Date;
}) {
  const { db, ledger, audit, throttle } = deps;
  const now = deps.clock ?? (() => new Date());

  return {
    /**
     * Creates a code. A code already taken in any letter case → {@link ConflictError} (409,
     * `code_taken`).
     */
    async create(admin: CurrentUser, input: PromoCodeInput, ctx: RequestContext): Promise<PromoCode> {
      try {
        return await inTransaction(db, async (trx) => {
          const code = await store.insertPromoCode(trx, {
            code: input.code,
            millicredits: input.millicredits,
            creditsExpireDays: input.creditsExpireDays ?? null,
            validFrom: input.validFrom ?? null,
            validUntil: input.validUntil ?? null,
            maxRedemptions: input.maxRedemptions ?? null,
            perUserLimit: input.perUserLimit,
            newUsersOnly: input.newUsersOnly,
            createdBy: admin.id,
          });
          await audit.record(
            { actor: `admin:${admin.id}`, actorUserId: admin.id, action: 'admin.promo_code_created', target: { type: 'promo_code', id: code.id }, ...ctx, details: { code: code.code, millicredits: code.millicredits } },
            trx,
          );
          return code;
        });
      } catch (err) {
        if (isUniqueViolation(err, 'promo_codes_code_unique')) throw new ConflictError(`The code ${input.code} already exists.`, 'code_taken');
        throw err;
      }
    },

    /** Every code, newest first, with its redemption count. */
    list(): Promise<PromoCode[]> {
      return store.listPromoCodes(db);
    },

    /** Deactivates a code (idempotent): it then answers 404 like an unknown code. Unknown id → 404. */
    async deactivate(admin: CurrentUser, id: string, ctx: RequestContext): Promise<PromoCode> {
      return inTransaction(db, async (trx) => {
        const code = await store.deactivatePromoCode(trx, id);
        if (!code) throw new NotFoundError('promo code');
        await audit.record({ actor: `admin:${admin.id}`, actorUserId: admin.id, action: 'admin.promo_code_deactivated', target: { type: 'promo_code', id }, ...ctx, details: { code: code.code } }, trx);
        return code;
      });
    },

    /**
     * Redeems `code` (any letter case) for `user`: one `promo` lot of the code's credits, expiring
     * after its `creditsExpireDays` (never when unset). Throttled first (429). Refusals, in this
     * order: unknown or deactivated → 404 (the same answer, so codes cannot be probed);
     * outside `validFrom`/`validUntil` → 410; the user's `perUserLimit` reached → 409; all
     * `maxRedemptions` taken → 410; `newUsersOnly` and the account is older than the code → 403.
     * A gift code (`GIFT-…`) is redeemed by `giftCodes` instead (`code` undefined in the result).
     */
    async redeem(user: CurrentUser, code: string, ctx: RequestContext): Promise<{ code: PromoCode | undefined; lot: Lot }> {
      const ip = ctx.ip ?? 'unknown';
      await throttle.attempt(user.id, ip);
      let found = false;
      try {
        if (deps.giftCodes && isGiftCode(code)) {
          try {
            const { lot } = await deps.giftCodes.redeem(user, code);
            found = true;
            return { code: undefined, lot };
          } catch (err) {
            found = !(err instanceof NotFoundError);
            throw err;
          }
        }
        const result = await inTransaction(db, async (trx) => {
          const promo = await store.findPromoCodeByCode(trx, code, true);
          if (!promo || promo.deactivatedAt) throw new NotFoundError('promo code');
          found = true;
          const at = now();
          if (promo.validFrom && promo.validFrom > at) throw new GoneError('This promo code is not valid yet.', 'promo_not_yet_valid');
          if (promo.validUntil && promo.validUntil <= at) throw new GoneError('This promo code has expired.', 'promo_expired');
          const mine = await store.countUserRedemptions(trx, promo.id, user.id);
          if (mine >= promo.perUserLimit) throw new ConflictError('You have already redeemed this promo code.', 'promo_already_redeemed');
          if (promo.maxRedemptions !== null && promo.redemptionCount >= promo.maxRedemptions) {
            throw new GoneError('This promo code has been used up.', 'promo_used_up');
          }
          if (promo.newUsersOnly) {
            const row = await trx('users').select('created_at').where({ id: user.id }).first();
            if (!row || (row.created_at as Date) < promo.createdAt) throw new ForbiddenError('This promo code is for new accounts only.', 'promo_new_users_only');
          }
          const transferId = `promo:${promo.id}:${user.id}:${mine + 1}`;
          const granted = await ledger.grant(
            {
              transferId,
              userId: user.id,
              millicredits: promo.millicredits,
              kind: 'promo',
              expiresAt: promo.creditsExpireDays ? new Date(at.getTime() + promo.creditsExpireDays * 86_400_000) : null,
              actor: `user:${user.id}`,
              reason: `Promo code ${promo.code.toUpperCase()}`,
              reference: { type: 'promo_code', id: promo.id },
            },
            trx,
          );
          await store.recordRedemption(trx, { promoCodeId: promo.id, userId: user.id, seq: mine + 1, transferId });
          await audit.record(
            { actor: `user:${user.id}`, actorUserId: user.id, action: 'credits.promo_redeemed', target: { type: 'promo_code', id: promo.id }, ...ctx, details: { code: promo.code, millicredits: promo.millicredits } },
            trx,
          );
          return { code: { ...promo, redemptionCount: promo.redemptionCount + 1 }, lot: granted.lot };
        });
        return result;
      } finally {
        if (found) await throttle.forgive(user.id, ip);
      }
    },
  };
}
