import crypto from 'node:crypto';
import type Stripe from 'stripe';
import type { SignupExtras } from '../auth/auth-service.ts';
import type { CurrentUser } from '../auth/auth-types.ts';
import type { Config } from '../config.ts';
import { isUniqueViolation, type Db, type Trx } from '../db/database.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Logger } from '../logger.ts';
import type { Payment } from '../payments/payments-store.ts';
import * as store from './referrals-store.ts';

export type Referrals = ReturnType<typeof createReferrals>;

/** A referral reward is taken back when its payment is refunded within this many days (issue 17). */
export const REFERRAL_REFUND_WINDOW_DAYS = 30;

const CODE_ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789'; // no 0/o, 1/l/i: codes are read aloud and typed

function newCode(): string {
  const bytes = crypto.randomBytes(8);
  return Array.from(bytes, (b) => CODE_ALPHABET[b % CODE_ALPHABET.length]).join('');
}

/** The first instant of the UTC calendar month of `d` (the monthly cap counts from there). */
function monthStart(d: Date): Date {
  return new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
}

/**
 * Referrals (issue 17). Each user has a link `/r/<code>`. A sign-up through it gives the new user
 * `REFERRAL_REFEREE_CREDITS` as a `referral` lot; the referrer gets `REFERRAL_REFERRER_CREDITS`
 * (a `referral` lot) only when the new user's first payment is paid, through the payment's own
 * fulfilment transaction, and loses it (a clawback of that lot) if that payment is fully refunded
 * within {@link REFERRAL_REFUND_WINDOW_DAYS} days. At most `REFERRAL_MAX_PER_MONTH` rewards per
 * referrer per UTC calendar month (counted under the referrer's code row lock, so concurrent
 * payments cannot pass it). Self-referral earns nothing: a sign-up from a browser the referrer
 * was seen in (signed `tally_bid` cookie), or a first payment with a card whose Stripe
 * fingerprint (`payment_method_details.card.fingerprint`) one of the referrer's payments used.
 */
export function createReferrals(deps: { db: Db; ledger: Ledger; stripe: Stripe; config: Pick<Config, 'appUrl' | 'growth'>; logger: Logger; clock?: () => Date }) {
  const { db, ledger, stripe, config, logger } = deps;
  const now = deps.clock ?? (() => new Date());
  const rules = config.growth.referral;
  const days = (n: number) => n * 86_400_000;

  async function codeFor(userId: string): Promise<string> {
    for (let attempt = 0; ; attempt++) {
      const known = await store.findCodeOf(db, userId);
      if (known) return known;
      try {
        await store.insertCode(db, userId, newCode());
      } catch (err) {
        if (!isUniqueViolation(err) || attempt >= 5) throw err; // a code taken by someone else: draw again
      }
    }
  }

  /** Stripe's card fingerprint of a payment (cached), or undefined when Stripe cannot tell. */
  async function fingerprintOf(q: Db | Trx, payment: { id: string; userId: string; paymentIntentId: string | null }): Promise<string | undefined> {
    const cached = await store.cachedFingerprint(q, payment.id);
    if (cached || !payment.paymentIntentId) return cached;
    try {
      const pi = await stripe.paymentIntents.retrieve(payment.paymentIntentId, { expand: ['latest_charge'] });
      const charge = pi.latest_charge;
      const fingerprint = charge && typeof charge !== 'string' ? charge.payment_method_details?.card?.fingerprint : undefined;
      if (fingerprint) await store.cacheFingerprint(q, payment.id, payment.userId, fingerprint);
      return fingerprint ?? undefined;
    } catch (err) {
      logger.warn({ err, paymentId: payment.id }, 'card fingerprint unavailable for the referral check');
      return undefined;
    }
  }

  return {
    /** The user's referral code (made now if they have none), their link, and their figures. */
    async summary(userId: string): Promise<{ code: string; link: string; referred: number; rewarded: number; earnedMillicredits: number }> {
      const code = await codeFor(userId);
      return { code, link: `${config.appUrl}/r/${code}`, ...(await store.summaryOf(db, userId)) };
    },

    /** True when `code` is someone's referral code (any letter case). */
    async knownCode(code: string): Promise<boolean> {
      return /^[a-z0-9]{6,20}$/i.test(code) && (await store.findReferrerByCode(db, code)) !== undefined;
    },

    /** Remembers that `userId` uses this browser (a later sign-up from it through their link is self-referral). */
    async seenIn(userId: string, browserId: string): Promise<void> {
      await store.rememberBrowser(db, userId, browserId);
    },

    /**
     * In the sign-up transaction: records the referral of the link the browser came through and
     * grants the new user's `referral` lot (transfer `referral_referee:<userId>`), unless the
     * browser is the referrer's own (then `self_referral`, no credits). Remembers the browser.
     */
    async onSignup(trx: Trx, user: CurrentUser, extras: SignupExtras): Promise<void> {
      if (extras.browserId) await store.rememberBrowser(trx, user.id, extras.browserId);
      if (!extras.referralCode) return;
      const referrerId = await store.findReferrerByCode(trx, extras.referralCode);
      if (!referrerId || referrerId === user.id) return;
      const self = extras.browserId ? await store.browserSeenFor(trx, referrerId, extras.browserId) : false;
      let refereeTransferId: string | null = null;
      if (!self && rules.refereeMillicredits > 0) {
        refereeTransferId = `referral_referee:${user.id}`;
        await ledger.grant(
          {
            transferId: refereeTransferId,
            userId: user.id,
            millicredits: rules.refereeMillicredits,
            kind: 'referral',
            expiresAt: new Date(now().getTime() + days(rules.creditsDays)),
            actor: 'system',
            reason: 'Welcome credits for joining through a referral link',
            reference: { type: 'user', id: referrerId },
          },
          trx,
        );
      }
      await store.insertReferral(trx, { referrerId, refereeId: user.id, status: self ? 'self_referral' : 'signed_up', refereeTransferId });
    },

    /** Payment hooks (src/payments/payments-service.ts `PaymentEvents`), in the payment's transaction. */
    paymentHooks: {
      async paid(trx: Trx, payment: Payment): Promise<void> {
        const referral = await store.findByReferee(trx, payment.userId, true);
        if (!referral || referral.status !== 'signed_up') return;
        if (await store.hasEarlierPaidPayment(trx, payment.userId, payment.id)) return; // not the first payment
        const card = await fingerprintOf(trx, payment);
        if (card) {
          for (const p of await store.paidPaymentsOf(trx, referral.referrerId)) {
            if ((await fingerprintOf(trx, { ...p, userId: referral.referrerId })) === card) {
              await store.setStatus(trx, referral.id, { status: 'self_referral' });
              return;
            }
          }
        }
        await store.findCodeOf(trx, referral.referrerId, true); // serializes this referrer's rewards (monthly cap)
        const at = now();
        if ((await store.rewardsSince(trx, referral.referrerId, monthStart(at))) >= rules.maxPerMonth || rules.referrerMillicredits === 0) {
          await store.setStatus(trx, referral.id, { status: 'over_monthly_cap' });
          return;
        }
        const transferId = `referral_reward:${referral.id}`;
        await ledger.grant(
          {
            transferId,
            userId: referral.referrerId,
            millicredits: rules.referrerMillicredits,
            kind: 'referral',
            expiresAt: new Date(at.getTime() + days(rules.creditsDays)),
            actor: 'system',
            reason: 'Referral reward: someone you invited made their first payment',
            reference: { type: 'referral', id: referral.id },
          },
          trx,
        );
        await store.setStatus(trx, referral.id, { status: 'rewarded', reward_transfer_id: transferId, reward_payment_id: payment.id, rewarded_at: at });
      },

      async refunded(trx: Trx, payment: Payment, _before: number, after: number): Promise<void> {
        if (after < payment.amountCents) return; // only a full refund undoes the reward
        const referral = await store.findByRewardPayment(trx, payment.id);
        if (!referral || referral.status !== 'rewarded' || !referral.rewardTransferId) return;
        const paidAt = payment.paidAt ?? referral.rewardedAt!;
        if (now().getTime() - paidAt.getTime() > days(REFERRAL_REFUND_WINDOW_DAYS)) return;
        const lot = await ledger.findLotByTransfer(referral.rewardTransferId, trx);
        if (!lot) throw new Error(`lot of ${referral.rewardTransferId} is missing`);
        await ledger.clawback(
          {
            transferId: `referral_reversal:${referral.id}`,
            lotId: lot.id,
            millicredits: lot.amount,
            actor: 'system',
            reason: 'Referral reward taken back: the payment was refunded',
            reference: { type: 'referral', id: referral.id },
          },
          trx,
        );
        await store.setStatus(trx, referral.id, { status: 'reversed', reversed_at: now() });
      },
    },
  };
}
