import Stripe from 'stripe';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { ValidationError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Logger } from '../logger.ts';
import * as paymentsStore from '../payments/payments-store.ts';
import type { Payments } from '../payments/payments-service.ts';
import type { PaymentIntentFacts } from '../payments/stripe-webhook.ts';
import * as store from './auto-recharge-store.ts';

/** Consecutive failed recharges after which auto-recharge turns itself off (issue 14). */
export const MAX_CONSECUTIVE_FAILURES = 3;
/** Default recharges a day (issue 14). */
export const DEFAULT_MAX_PER_DAY = 3;
/** Default monthly ceiling: the price of this many packs (issue 14). */
export const DEFAULT_CEILING_PACKS = 5;

/** What happened to the user's auto-recharge; each is sent to the user through the {@link RechargeNotifier}. */
export type RechargeNotice =
  | { kind: 'failed'; rechargeId: string; code: string; message: string; consecutiveFailures: number }
  | { kind: 'disabled'; reason: 'failures' | 'card_removed' }
  | { kind: 'authentication_required'; rechargeId: string; checkoutUrl: string | null }
  | { kind: 'daily_limit'; resetsAt: Date }
  | { kind: 'monthly_ceiling'; resetsAt: Date }
  | { kind: 'succeeded'; rechargeId: string };

/** The notification pipeline as auto-recharge uses it (email with a link, in-app, webhook `auto_recharge.*`). */
export interface RechargeNotifier {
  notify(userId: string, notice: RechargeNotice): Promise<void>;
}

export function createLoggingRechargeNotifier(logger: Logger): RechargeNotifier {
  return {
    async notify(userId, notice) {
      logger.info({ userId, notice: notice.kind }, `auto_recharge.${notice.kind}`);
    },
  };
}

/** The settings a user chooses (millicredits, cents). */
export interface AutoRechargeInput {
  paymentMethodId: string;
  thresholdMillicredits: number;
  packageId: string;
  maxPerDay?: number;
  monthlyCeilingCents?: number;
}

export type AutoRecharge = ReturnType<typeof createAutoRecharge>;

const startOfUtcDay = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
const startOfUtcMonth = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1));
const nextUtcDay = (d: Date) => new Date(startOfUtcDay(d).getTime() + 86_400_000);
const nextUtcMonth = (d: Date) => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1));

/**
 * Auto-recharge (issue 14): when available credits fall below the user's threshold after a spend,
 * exactly one off-session PaymentIntent on the saved card buys the chosen pack (one in flight per
 * user: partial unique index; Stripe idempotency key per recharge). The pack is an ordinary
 * `payments` row, fulfilled on `payment_intent.succeeded` like any purchase (once; refunds claw
 * back). Guardrails: at most `maxPerDay` a UTC day and `monthlyCeilingCents` a UTC month (each
 * noticed once per period); 3 consecutive failures turn it off; `authentication_required` sends
 * a Checkout link and never retries by itself.
 */
export function createAutoRecharge(deps: {
  db: Db;
  ledger: Ledger;
  stripe: Stripe;
  payments: Pick<Payments, 'ensureCustomer' | 'createCheckout' | 'webhook'>;
  notifier: RechargeNotifier;
  logger: Logger;
  clock?: () => Date;
}) {
  const { db, ledger, stripe, payments, notifier, logger } = deps;
  const clock = deps.clock ?? (() => new Date());

  async function notify(userId: string, notice: RechargeNotice) {
    await notifier.notify(userId, notice).catch((err: unknown) => logger.error({ err, userId }, 'auto-recharge notice failed'));
  }

  async function recordFailure(userId: string, rechargeId: string, code: string, message: string) {
    const consecutive = await inTransaction(db, async (trx) => {
      await store.updateRecharge(trx, rechargeId, { status: 'failed', failure_code: code, failure_message: message, completed_at: clock() });
      const s = await store.findSettings(trx, userId, true);
      const n = (s?.consecutive_failures ?? 0) + 1;
      await store.updateSettings(trx, userId, {
        consecutive_failures: n,
        ...(n >= MAX_CONSECUTIVE_FAILURES ? { enabled: false, disabled_reason: 'failures' } : {}),
      });
      return n;
    });
    await notify(userId, { kind: 'failed', rechargeId, code, message, consecutiveFailures: consecutive });
    if (consecutive >= MAX_CONSECUTIVE_FAILURES) await notify(userId, { kind: 'disabled', reason: 'failures' });
  }

  const service = {
    /**
     * Saves `paymentMethodId` (a card; attached to the user's Stripe customer) and the settings,
     * and turns auto-recharge on. Defaults: 3 a day, a ceiling of 5 packs a month.
     * @throws {ValidationError} unknown pack, or a ceiling below one pack's price.
     */
    async enable(user: { id: string; email: string; name: string }, input: AutoRechargeInput) {
      const pack = await paymentsStore.findPackage(db, input.packageId);
      if (!pack) throw new ValidationError([{ field: 'body.packageId', message: `no credit pack "${input.packageId}"` }]);
      const ceiling = input.monthlyCeilingCents ?? pack.amountCents * DEFAULT_CEILING_PACKS;
      if (ceiling < pack.amountCents) throw new ValidationError([{ field: 'body.monthlyCeilingCents', message: 'must be at least the price of one pack' }]);
      const customer = await payments.ensureCustomer(user);
      const pm = await stripe.paymentMethods.attach(input.paymentMethodId, { customer });
      return store.upsertSettings(db, {
        user_id: user.id,
        enabled: true,
        payment_method_id: pm.id,
        card_brand: pm.card?.brand ?? null,
        card_last4: pm.card?.last4 ?? null,
        threshold_millicredits: input.thresholdMillicredits,
        package_id: pack.id,
        max_per_day: input.maxPerDay ?? DEFAULT_MAX_PER_DAY,
        monthly_ceiling_cents: ceiling,
        consecutive_failures: 0,
        disabled_reason: null,
      });
    },

    /** Deletes the saved card (detached at Stripe) and turns auto-recharge off. */
    async removeCard(userId: string): Promise<void> {
      const s = await store.findSettings(db, userId);
      if (!s?.payment_method_id) return;
      await stripe.paymentMethods.detach(s.payment_method_id);
      await store.updateSettings(db, userId, { enabled: false, payment_method_id: null, card_brand: null, card_last4: null, disabled_reason: 'card_removed' });
      await notify(userId, { kind: 'disabled', reason: 'card_removed' });
    },

    /**
     * Call after any spend: starts one recharge when available < threshold and the guardrails
     * allow. Returns what it did: `started`, `in_flight`, `above_threshold`, `off`,
     * `daily_limit`, `monthly_ceiling`, `failed`, `authentication_required`.
     */
    async afterSpend(userId: string): Promise<string> {
      const s = await store.findSettings(db, userId);
      if (!s?.enabled || !s.payment_method_id) return 'off';
      const balance = await ledger.getBalance(userId);
      if (balance.available >= Number(s.threshold_millicredits)) return 'above_threshold';
      const pack = await paymentsStore.findPackage(db, s.package_id);
      if (!pack) return 'off';
      const now = clock();
      const used = await store.usage(db, userId, startOfUtcDay(now), startOfUtcMonth(now));
      if (used.today >= s.max_per_day) {
        if (await store.recordNotice(db, userId, 'daily_limit', startOfUtcDay(now).toISOString().slice(0, 10))) {
          await notify(userId, { kind: 'daily_limit', resetsAt: nextUtcDay(now) });
        }
        return 'daily_limit';
      }
      if (used.monthCents + pack.amountCents > Number(s.monthly_ceiling_cents)) {
        if (await store.recordNotice(db, userId, 'monthly_ceiling', startOfUtcMonth(now).toISOString().slice(0, 7))) {
          await notify(userId, { kind: 'monthly_ceiling', resetsAt: nextUtcMonth(now) });
        }
        return 'monthly_ceiling';
      }
      const started = await inTransaction(db, async (trx) => {
        const { payment } = await paymentsStore.insertPendingPayment(trx, { userId, pack, idempotencyKey: null });
        const recharge = await store.insertPending(trx, { userId, paymentId: payment.id, amountCents: pack.amountCents, currency: pack.currency, createdAt: now });
        if (!recharge) throw new InFlight();
        return { payment, recharge };
      }).catch((err: unknown) => {
        if (err instanceof InFlight) return undefined;
        throw err;
      });
      if (!started) return 'in_flight';
      const { payment, recharge } = started;
      const customer = await payments.ensureCustomer({ id: userId, email: '', name: '' });
      try {
        const pi = await stripe.paymentIntents.create(
          {
            amount: pack.amountCents,
            currency: pack.currency,
            customer,
            payment_method: s.payment_method_id,
            off_session: true,
            confirm: true,
            description: `Auto-recharge: ${pack.name} pack`,
            metadata: { paymentId: payment.id, autoRechargeId: recharge.id, userId, packageId: pack.id },
          },
          { idempotencyKey: `tally-auto-recharge-${recharge.id}` },
        );
        await store.updateRecharge(db, recharge.id, { payment_intent_id: pi.id });
        // Credits arrive with payment_intent.succeeded (the webhook), like any purchase.
        return 'started';
      } catch (err) {
        if (!(err instanceof Stripe.errors.StripeCardError)) {
          await store.updateRecharge(db, recharge.id, { status: 'failed', failure_code: 'api_error', failure_message: (err as Error).message, completed_at: clock() });
          throw err;
        }
        const piId = (err.payment_intent as { id?: string } | undefined)?.id ?? null;
        if (piId) await store.updateRecharge(db, recharge.id, { payment_intent_id: piId });
        if (err.code === 'authentication_required') {
          // No retry loop: the user finishes the payment in Checkout from the link we send.
          await store.updateRecharge(db, recharge.id, { status: 'requires_action', failure_code: err.code, failure_message: err.message, completed_at: clock() });
          // Paused until the user pays in Checkout or saves the card again (enable), so spends do not retry it.
          await store.updateSettings(db, userId, { enabled: false, disabled_reason: 'authentication_required' });
          let checkoutUrl: string | null = null;
          try {
            const user = (await store.findUserContact(db, userId))!;
            checkoutUrl = (await payments.createCheckout(user, pack.id, `auto-recharge-${recharge.id}`)).checkoutUrl;
          } catch (e) {
            logger.error({ err: e, userId }, 'could not create the checkout link for an auto-recharge');
          }
          await notify(userId, { kind: 'authentication_required', rechargeId: recharge.id, checkoutUrl });
          return 'authentication_required';
        }
        await recordFailure(userId, recharge.id, err.decline_code ?? err.code ?? 'card_declined', err.message);
        return 'failed';
      }
    },

    /** For the webhook: a succeeded off-session PaymentIntent of a recharge → its pack's credits, once. */
    async paymentIntentSucceeded(pi: PaymentIntentFacts, trx: Trx): Promise<string | null> {
      if (!pi.metadata?.autoRechargeId) return null;
      const result = await payments.webhook.fulfillPaymentIntent(pi, trx);
      if (!result) return null;
      const recharge = await store.findRechargeByPayment(trx, result.payment.id, true);
      if (recharge && recharge.status !== 'succeeded') {
        await store.updateRecharge(trx, recharge.id, { status: 'succeeded', payment_intent_id: pi.id, completed_at: clock() });
        await store.updateSettings(trx, result.payment.userId, { consecutive_failures: 0 });
      }
      return result.granted ? 'auto_recharge_fulfilled' : 'auto_recharge_already_fulfilled';
    },

    /**
     * Settings, the last 20 recharges and when the next recharge may start (`nextAllowedAt`: now,
     * the next UTC day when today's count is used, the next month when the ceiling is reached;
     * null when auto-recharge is off), for /account and the API.
     */
    async overview(userId: string) {
      const [settings, recharges] = await Promise.all([store.findSettings(db, userId), store.listRecharges(db, userId, 20)]);
      let nextAllowedAt: Date | null = null;
      if (settings?.enabled) {
        const now = clock();
        const pack = await paymentsStore.findPackage(db, settings.package_id);
        const used = await store.usage(db, userId, startOfUtcDay(now), startOfUtcMonth(now));
        if (pack && used.monthCents + pack.amountCents > Number(settings.monthly_ceiling_cents)) nextAllowedAt = nextUtcMonth(now);
        else if (used.today >= settings.max_per_day) nextAllowedAt = nextUtcDay(now);
        else nextAllowedAt = now;
      }
      return { settings, recharges, nextAllowedAt };
    },
  };
  return service;
}

class InFlight extends Error {}
