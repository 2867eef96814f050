import Stripe from 'stripe';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { ValidationError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Logger } from '../logger.ts';
import * as paymentsStore from '../payments/payments-store.ts';
import type { Payments } from '../payments/payments-service.ts';
import { customerIdOf, type MoreHandler, type PaymentIntentFacts } from '../payments/stripe-webhook.ts';
import { NotFoundError } from '../http/errors.ts';
import { creditsToMillicredits } from '../ledger/credits.ts';
import * as store from './auto-recharge-store.ts';
import { createSpendChecks } from './recharge-ledger.ts';

/** Consecutive failed recharges after which auto-recharge turns itself off (issue 14). */
export const MAX_CONSECUTIVE_FAILURES = 3;
/** Default recharges a day (issue 14). */
export const DEFAULT_MAX_PER_DAY = 3;
/** Default monthly ceiling: the price of this many packs (issue 14). */
export const DEFAULT_CEILING_PACKS = 5;
/** The threshold a newly saved card starts with, until the user chooses one (credits). */
export const DEFAULT_THRESHOLD_CREDITS = 20;

/** What Tally keeps of a saved card: the Stripe PaymentMethod id, brand and last 4 digits. */
export interface SavedCard {
  paymentMethodId: string;
  brand: string | null;
  last4: string | null;
}

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
  /** Where Checkout sends the user back after saving a card (`config.appUrl`). */
  appUrl?: string;
}) {
  const { db, ledger, stripe, payments, notifier, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  const checks = createSpendChecks(logger);

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

  /**
   * Keeps `pm` (attached to the user's customer) as the saved card: replaces an earlier one
   * (detached at Stripe), resets the failure count and keeps auto-recharge on or off as it was
   * (off with defaults when there were no settings yet: the user turns it on).
   */
  async function keepCard(userId: string, card: SavedCard): Promise<void> {
    const earlier = await inTransaction(db, async (trx) => {
      const s = await store.findSettings(trx, userId, true);
      if (s) {
        await store.updateSettings(trx, userId, {
          payment_method_id: card.paymentMethodId,
          card_brand: card.brand,
          card_last4: card.last4,
          consecutive_failures: 0,
          ...(s.disabled_reason === 'card_removed' ? { disabled_reason: null } : {}),
        });
        return s.payment_method_id !== card.paymentMethodId ? s.payment_method_id : null;
      }
      const [pack] = await paymentsStore.listPackages(trx);
      if (!pack) throw new Error('no credit pack to recharge with');
      await store.upsertSettings(trx, {
        user_id: userId,
        enabled: false,
        payment_method_id: card.paymentMethodId,
        card_brand: card.brand,
        card_last4: card.last4,
        threshold_millicredits: creditsToMillicredits(DEFAULT_THRESHOLD_CREDITS),
        package_id: pack.id,
        max_per_day: DEFAULT_MAX_PER_DAY,
        monthly_ceiling_cents: pack.amountCents * DEFAULT_CEILING_PACKS,
        consecutive_failures: 0,
        disabled_reason: null,
      });
      return null;
    });
    if (earlier) await stripe.paymentMethods.detach(earlier).catch((err: unknown) => logger.warn({ err, userId }, 'could not detach the replaced card'));
  }

  const cardOf = (pm: Stripe.PaymentMethod): SavedCard => ({ paymentMethodId: pm.id, brand: pm.card?.brand ?? null, last4: pm.card?.last4 ?? null });
  const idOf = (v: string | { id: string } | null | undefined) => (typeof v === 'string' ? v : (v?.id ?? null));

  const service = {
    /**
     * Starts saving a card: a Stripe Checkout Session in `mode: setup` for the user's customer;
     * returns its URL. Checkout sends the user back to `/account/settings/credits/card/saved`.
     */
    async startCardSetup(user: { id: string; email: string; name: string }): Promise<string> {
      const customer = await payments.ensureCustomer(user);
      const session = await stripe.checkout.sessions.create({
        mode: 'setup',
        customer,
        currency: 'usd',
        success_url: `${deps.appUrl ?? ''}/account/settings/credits/card/saved?session_id={CHECKOUT_SESSION_ID}`,
        cancel_url: `${deps.appUrl ?? ''}/account/settings/credits#auto-recharge`,
        metadata: { userId: user.id, purpose: 'auto_recharge_card' },
      });
      if (!session.url) throw new Error('Stripe returned a setup session without a URL');
      return session.url;
    },

    /**
     * The return from a setup session: keeps the card its SetupIntent saved. Null while the
     * session is not complete. 404 when the session is not the user's.
     */
    async finishCardSetup(user: { id: string; email: string; name: string }, sessionId: string): Promise<SavedCard | null> {
      const session = await stripe.checkout.sessions.retrieve(sessionId).catch(() => null);
      const customer = await payments.ensureCustomer(user);
      if (!session || session.mode !== 'setup' || idOf(session.customer) !== customer) throw new NotFoundError('setup session');
      if (session.status !== 'complete' || !session.setup_intent) return null;
      const intent = await stripe.setupIntents.retrieve(idOf(session.setup_intent)!);
      const pmId = idOf(intent.payment_method);
      if (intent.status !== 'succeeded' || !pmId) return null;
      const card = cardOf(await stripe.paymentMethods.retrieve(pmId));
      await keepCard(user.id, card);
      return card;
    },

    /**
     * Webhook handlers (the payments webhook's `more` map): a pack bought with "save this card"
     * (`setup_future_usage: off_session`, metadata `saveCard`) keeps the card it was paid with,
     * then leaves the event to payments (fulfillment); a setup session's `setup_intent.succeeded`
     * keeps its card; `customer.deleted` (Stripe detaches a deleted customer's cards,
     * https://docs.stripe.com/api/customers/delete) turns auto-recharge off as a removed card does,
     * and tells the user, instead of failing the next recharge as a decline; the other card events
     * need nothing.
     */
    webhookHandlers: {
      'customer.deleted': {
        prefetch: async (event) => {
          const id = customerIdOf(event);
          return id ? ((await store.userOfCustomer(db, id)) ?? null) : null;
        },
        handle: async (_event, trx, prefetched) => {
          const userId = prefetched as string | null;
          if (!userId) return null;
          const s = await store.findSettings(trx, userId, true);
          if (!s?.payment_method_id) return null;
          await store.updateSettings(trx, userId, { enabled: false, payment_method_id: null, card_brand: null, card_last4: null, disabled_reason: 'card_removed' });
          return 'auto_recharge_card_removed';
        },
        after: async (_event, outcome, prefetched) => {
          if (prefetched && outcome.includes('auto_recharge_card_removed')) await notify(prefetched as string, { kind: 'disabled', reason: 'card_removed' });
        },
      },
      'payment_intent.succeeded': {
        prefetch: async (event) => {
          const pi = event.data.object as Stripe.PaymentIntent;
          const pmId = idOf(pi.payment_method);
          if (pi.metadata?.saveCard !== 'true' || !pi.metadata.userId || !pmId) return null;
          return { userId: pi.metadata.userId, card: cardOf(await stripe.paymentMethods.retrieve(pmId)) };
        },
        handle: async (_event, _trx, prefetched) => {
          const p = prefetched as { userId: string; card: SavedCard } | null;
          // After the transaction is not needed: keepCard is idempotent, and a retry repeats it.
          if (p) await keepCard(p.userId, p.card);
          return null;
        },
      },
      'setup_intent.succeeded': {
        prefetch: async (event) => {
          const intent = event.data.object as Stripe.SetupIntent;
          const pmId = idOf(intent.payment_method);
          const customer = idOf(intent.customer);
          if (!pmId || !customer) return null;
          const userId = await store.userOfCustomer(db, customer);
          return userId ? { userId, card: cardOf(await stripe.paymentMethods.retrieve(pmId)) } : null;
        },
        handle: async (_event, _trx, prefetched) => {
          const p = prefetched as { userId: string; card: SavedCard } | null;
          if (p) await keepCard(p.userId, p.card);
          return p ? 'card_saved' : 'ignored:unknown_customer';
        },
      },
      'setup_intent.created': { handle: async () => 'ignored:not_needed' },
      'payment_method.attached': { handle: async () => 'ignored:not_needed' },
      'payment_method.detached': { handle: async () => 'ignored:not_needed' },
    } satisfies Record<string, MoreHandler>,

    /** The packs a recharge may buy (for the settings form). */
    packages: () => paymentsStore.listPackages(db),

    /** Turns auto-recharge off, keeping the saved card and settings. */
    async turnOff(userId: string): Promise<void> {
      await store.updateSettings(db, userId, { enabled: false, disabled_reason: null });
    },

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
     * `daily_limit`, `monthly_ceiling`, `failed`, `authentication_required`. `watched`: the spend
     * already said auto-recharge is on for this user (its `watch`), so the pre-check is skipped.
     */
    async afterSpend(userId: string, options: { watched?: boolean } = {}): Promise<string> {
      // Cheap pre-check without a lock: most users have no auto-recharge.
      if (!options.watched) {
        const unlocked = await store.findSettings(db, userId);
        if (!unlocked?.enabled || !unlocked.payment_method_id) return 'off';
      }
      const now = clock();
      type Decision =
        | { outcome: 'off' | 'above_threshold' | 'in_flight' }
        | { outcome: 'daily_limit' | 'monthly_ceiling'; notice: boolean }
        | { outcome: 'start'; s: store.DbAutoRechargeSettingsRow; pack: paymentsStore.CreditPackage; payment: { id: string }; recharge: store.DbAutoRechargeRow };
      // One decision at a time per user: the settings row is locked while the balance is read and
      // the pending recharge inserted, and the webhook that grants a recharge's credits takes the
      // same lock first, so a check never reads a balance from before a grant and then starts a
      // second recharge after the first one's credits arrived.
      const decision = await inTransaction(db, async (trx): Promise<Decision> => {
        const s = await store.findSettings(trx, userId, true);
        if (!s?.enabled || !s.payment_method_id) return { outcome: 'off' };
        if (await store.hasPending(trx, userId)) return { outcome: 'in_flight' };
        if ((await ledger.getAvailable(userId, trx)) >= Number(s.threshold_millicredits)) return { outcome: 'above_threshold' };
        const pack = await paymentsStore.findPackage(trx, s.package_id);
        if (!pack) return { outcome: 'off' };
        const used = await store.usage(trx, userId, startOfUtcDay(now), startOfUtcMonth(now));
        if (used.today >= s.max_per_day) {
          return { outcome: 'daily_limit', notice: await store.recordNotice(trx, userId, 'daily_limit', startOfUtcDay(now).toISOString().slice(0, 10)) };
        }
        if (used.monthCents + pack.amountCents > Number(s.monthly_ceiling_cents)) {
          return { outcome: 'monthly_ceiling', notice: await store.recordNotice(trx, userId, 'monthly_ceiling', startOfUtcMonth(now).toISOString().slice(0, 7)) };
        }
        const { payment } = await paymentsStore.insertPendingPayment(trx, { userId, pack, idempotencyKey: null });
        // The partial unique index (one pending recharge per user) backs the lock up.
        const recharge = await store.insertPending(trx, { userId, paymentId: payment.id, amountCents: pack.amountCents, currency: pack.currency, createdAt: now });
        if (!recharge) throw new InFlight();
        return { outcome: 'start', s, pack, payment, recharge };
      }).catch((err: unknown) => {
        if (err instanceof InFlight) return { outcome: 'in_flight' as const };
        throw err;
      });
      if (decision.outcome === 'daily_limit') {
        if (decision.notice) await notify(userId, { kind: 'daily_limit', resetsAt: nextUtcDay(now) });
        return 'daily_limit';
      }
      if (decision.outcome === 'monthly_ceiling') {
        if (decision.notice) await notify(userId, { kind: 'monthly_ceiling', resetsAt: nextUtcMonth(now) });
        return 'monthly_ceiling';
      }
      if (decision.outcome !== 'start') return decision.outcome;
      const { s, pack, payment, recharge } = decision;
      const customer = await payments.ensureCustomer({ id: userId, email: '', name: '' });
      try {
        const pi = await stripe.paymentIntents.create(
          {
            amount: pack.amountCents,
            currency: pack.currency,
            customer,
            payment_method: s.payment_method_id!,
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
      // The settings row first (as afterSpend takes it), then the payment, the lot and the recharge.
      if (pi.metadata.userId) await store.findSettings(trx, pi.metadata.userId, true);
      const result = await payments.webhook.fulfillPaymentIntent(pi, trx);
      if (!result) return null;
      const recharge = await store.findRechargeByPayment(trx, result.payment.id, true);
      if (recharge && recharge.status !== 'succeeded') {
        await store.updateRecharge(trx, recharge.id, { status: 'succeeded', payment_intent_id: pi.id, completed_at: clock() });
        await store.updateSettings(trx, result.payment.userId, { consecutive_failures: 0 });
      }
      return result.granted ? 'auto_recharge_fulfilled' : 'auto_recharge_already_fulfilled';
    },

    /** Runs {@link afterSpend} in the background (errors logged); see {@link settled}. */
    checkSoon(userId: string): Promise<void> {
      checks.start(() => service.afterSpend(userId));
      return Promise.resolve();
    },

    /** The background checks started so far have finished (tests, shutdown). */
    settled: () => checks.settled(),

    /** The checks of {@link withAutoRecharge}, to share the tracking of {@link settled}. */
    checks,

    /**
     * The sweep (the web process's sweep timer): checks every user whose auto-recharge is on,
     * whose available credits are below the threshold and who has no recharge in flight, so a
     * spend made where no check ran (a separate worker process) still starts its recharge.
     * Returns how many recharges it started.
     */
    async sweep(limit = 100): Promise<number> {
      let started = 0;
      for (const userId of await store.usersBelowThreshold(db, limit)) {
        if ((await service.afterSpend(userId)) === 'started') started++;
      }
      return started;
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
