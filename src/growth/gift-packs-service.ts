import crypto from 'node:crypto';
import type { CurrentUser } from '../auth/auth-types.ts';
import type { Config } from '../config.ts';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { ConflictError, NotFoundError } from '../http/errors.ts';
import { formatCredits } from '../ledger/credits.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Lot } from '../ledger/ledger-types.ts';
import type { EmailOutbox } from '../notifications/email-outbox.ts';
import type { Payment } from '../payments/payments-store.ts';
import { GoneError } from './growth-errors.ts';

export type GiftPacks = ReturnType<typeof createGiftPacks>;

const ALPHABET = 'ABCDEFGHJKLMNPQRSTUVWXYZ23456789';
/** A gift code: `GIFT-XXXX-XXXX-XXXX` (60 random bits; letters and digits that read unambiguously). */
function newCode(): string {
  const b = crypto.randomBytes(12);
  const chars = Array.from(b, (x) => ALPHABET[x % ALPHABET.length]).join('');
  return `GIFT-${chars.slice(0, 4)}-${chars.slice(4, 8)}-${chars.slice(8, 12)}`;
}

/** `floor(amount × part / whole)` on integers (BigInt), as the payments service shares refunds. */
function share(amount: number, part: number, whole: number): number {
  return Number((BigInt(amount) * BigInt(part)) / BigInt(whole));
}

/** Whether a typed code is a gift code (else it is a promo code). */
export const isGiftCode = (code: string) => /^gift-/i.test(code.trim());

/**
 * Packs bought as gifts through Checkout (issue 17), hooked into the payments service's
 * fulfilment and refund (src/payments/payments-service.ts `giftPacks`): a paid gift pack issues a
 * code (emailed to the buyer, listed on /account) instead of granting the buyer; redeeming the
 * code grants the pack once as a `gift_code` lot (transfer `gift_code:<paymentId>`, counterparty
 * `sales`); a refund claws back the refunded share from whoever redeemed it, or, before
 * redemption, lowers what the code grants (a full refund voids it).
 */
export function createGiftPacks(deps: { db: Db; ledger: Ledger; outbox: EmailOutbox; config: Pick<Config, 'appUrl'>; clock?: () => Date }) {
  const { db, ledger, outbox, config } = deps;
  const now = deps.clock ?? (() => new Date());

  return {
    /** Marks a new Checkout payment as a gift (before the buyer is sent to pay). */
    async mark(paymentId: string, buyerId: string): Promise<void> {
      await db('gift_packs').insert({ payment_id: paymentId, buyer_id: buyerId }).onConflict('payment_id').ignore();
    },

    /**
     * The gift side of a buyer's payment, for the Checkout success page: `undefined` when the
     * payment is no gift pack; `{code: null}` while it is not paid yet; `{code, credits}` (credits
     * as a display string, e.g. "525") once issued.
     */
    async giftOf(paymentId: string, buyerId: string): Promise<{ code: string | null; credits: string | null } | undefined> {
      const row = await db('gift_packs').where({ payment_id: paymentId, buyer_id: buyerId }).first('code', 'millicredits');
      if (!row) return undefined;
      return { code: (row.code as string | null) ?? null, credits: row.millicredits == null ? null : formatCredits(Number(row.millicredits)) };
    },

    /** True when the payment is a pack bought as a gift. */
    async isGift(q: Db | Trx, paymentId: string): Promise<boolean> {
      return Boolean(await q('gift_packs').where({ payment_id: paymentId }).first());
    },

    /**
     * Fulfilment of a paid gift pack, in the payment's transaction: issues its code once and emails
     * it to the buyer. Returns true when issued now (false: already issued).
     */
    async issue(trx: Trx, payment: Payment): Promise<boolean> {
      const row = await trx('gift_packs').where({ payment_id: payment.id }).forUpdate().first();
      if (!row || row.code) return false;
      const code = newCode();
      const millicredits = payment.creditsMillicredits + payment.bonusMillicredits;
      await trx('gift_packs').where({ payment_id: payment.id }).update({ code, millicredits, issued_at: now() });
      const buyer = await trx('users').select('name', 'email').where({ id: payment.userId }).first();
      await outbox.enqueue(trx, {
        type: 'gift_code',
        to: buyer.email as string,
        userId: payment.userId,
        dedupeKey: `gift_code:${payment.id}`,
        data: { name: buyer.name as string, code, credits: formatCredits(millicredits), accountUrl: `${config.appUrl}/account#gift` },
      });
      return true;
    },

    /**
     * Redeems a gift code (any letter case) for `user`: the pack's credits (less any refunded share)
     * as a `gift_code` lot, once. Unknown → 404; redeemed → 409; fully refunded → 410.
     */
    async redeem(user: CurrentUser, code: string): Promise<{ lot: Lot }> {
      return inTransaction(db, async (trx) => {
        const row = await trx('gift_packs').where({ code: code.trim().toUpperCase() }).forUpdate().first();
        if (!row) throw new NotFoundError('promo code');
        if (row.redeemed_by) throw new ConflictError(row.redeemed_by === user.id ? 'You have already redeemed this gift code.' : 'This gift code has already been redeemed.', 'gift_code_redeemed');
        const worth = Number(row.millicredits) - Number(row.refunded_millicredits);
        if (worth <= 0) throw new GoneError('This gift code was refunded and is no longer valid.', 'gift_code_refunded');
        const granted = await ledger.grant(
          { transferId: `gift_code:${row.payment_id}`, userId: user.id, millicredits: worth, kind: 'gift_code', actor: `user:${user.id}`, reason: `Gift code ${row.code}`, reference: { type: 'payment', id: row.payment_id as string } },
          trx,
        );
        await trx('gift_packs').where({ payment_id: row.payment_id }).update({ redeemed_by: user.id, redeemed_at: now() });
        return { lot: granted.lot };
      });
    },

    /**
     * A refund of a gift pack (cumulative `refundedCents`, Stripe's total, above the payment's
     * `refundedCents`), in the refund's transaction: claws back the new refunded share from the
     * redeemer's lot (debt when spent, as for any purchase), or lowers the unredeemed code's worth.
     * Returns the millicredits taken back or voided.
     */
    async refund(trx: Trx, payment: Payment, refundedCents: number, reason: string): Promise<number> {
      const row = await trx('gift_packs').where({ payment_id: payment.id }).forUpdate().first();
      if (!row?.code) return 0;
      const total = Number(row.millicredits);
      const delta = share(total, refundedCents, payment.amountCents) - share(total, payment.refundedCents, payment.amountCents);
      if (delta <= 0) return 0;
      if (!row.redeemed_by) {
        await trx('gift_packs').where({ payment_id: payment.id }).update({ refunded_millicredits: Number(row.refunded_millicredits) + delta });
        return delta;
      }
      const lot = await ledger.findLotByTransfer(`gift_code:${payment.id}`, trx);
      if (!lot) throw new Error(`lot of gift_code:${payment.id} is missing`);
      await ledger.clawback(
        { transferId: `refund:${payment.id}:gift_code:${refundedCents}`, lotId: lot.id, millicredits: Math.min(delta, lot.amount), actor: 'stripe', reason, reference: { type: 'payment', id: payment.id } },
        trx,
      );
      return delta;
    },

    /** The gift codes a user bought (newest first), for /account. */
    async listBought(userId: string) {
      const rows = await db('gift_packs').where({ buyer_id: userId }).whereNotNull('code').orderBy('issued_at', 'desc').limit(20);
      return rows.map((r) => ({
        code: r.code as string,
        credits: formatCredits(Number(r.millicredits) - Number(r.refunded_millicredits)),
        redeemed: Boolean(r.redeemed_by),
        void: Number(r.refunded_millicredits) >= Number(r.millicredits),
        issuedAt: (r.issued_at as Date).toISOString(),
      }));
    },
  };
}
