import Stripe from 'stripe';
import type { Db } from './db.ts';
import type { Logger } from 'pino';
import { eventObject } from './stripe-emulator-objects.ts';
import * as store from './stripe-emulator-store.ts';

/**
 * Sends recorded events to the webhook endpoint as Stripe does
 * (https://docs.stripe.com/webhooks): `POST` of the event JSON with a `Stripe-Signature` header
 * (`t=<unix seconds>,v1=<HMAC-SHA256 of "t.payload" with the endpoint secret>`, made by the SDK's
 * own `generateTestHeaderString`), at least once. A non-2xx answer, a redirect, a timeout or a
 * network error is retried with exponential backoff (`baseMs`, 2×, 4×, … capped at `maxMs`) up
 * to `maxAttempts`; Stripe retries for up to three days, the emulator defaults to 20 attempts.
 *
 * Pending deliveries live in Postgres, so they survive a restart. Senders claim due rows with
 * `FOR UPDATE SKIP LOCKED` and a lease, so two emulator processes do not send the same delivery
 * at the same time (a sender that dies mid-send leaves it to be retried after the lease).
 */

export interface WebhookEndpoint {
  url: string;
  /** `whsec_…`: the endpoint's signing secret. */
  secret: string;
}

export interface RetryOptions {
  /** Delay after the first failed attempt, in ms (then doubled per attempt). Default 1000. */
  baseMs: number;
  /** Longest delay between attempts, in ms. Default 1 hour. */
  maxMs: number;
  /** Attempts before a delivery is marked `failed`. Default 20. */
  maxAttempts: number;
  /** Per-attempt HTTP timeout, in ms. Default 10 000 (Stripe waits about as long). */
  timeoutMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { baseMs: 1000, maxMs: 60 * 60 * 1000, maxAttempts: 20, timeoutMs: 10_000 };

/** Delay before the attempt after failed attempt number `attempt` (1-based): `baseMs · 2^(attempt−1)`, capped. */
export function retryDelayMs(attempt: number, retry: Pick<RetryOptions, 'baseMs' | 'maxMs'>): number {
  return Math.min(retry.baseMs * 2 ** Math.max(0, attempt - 1), retry.maxMs);
}

export interface WebhookDelivery {
  /** Sends every delivery due now (each at most once per call). Returns the number of attempts made. */
  deliverDue(): Promise<number>;
  /** Starts polling for due deliveries every `pollMs` (running `beforeTick` first each time). Idempotent. */
  start(): void;
  /** Stops polling and waits for an attempt in flight. */
  stop(): Promise<void>;
}

/**
 * Creates the webhook sender for `webhook` (none: every call is a no-op and deliveries stay
 * pending). `clock` schedules retries; signatures use wall-clock time.
 */
export function createWebhookDelivery(deps: {
  db: Db;
  logger: Logger;
  webhook: WebhookEndpoint | undefined;
  clock: () => Date;
  retry: RetryOptions;
  pollMs: number;
  /** Work to do before each poll (the emulator expires overdue sessions here). */
  beforeTick?: () => Promise<unknown>;
}): WebhookDelivery {
  const { db, logger, webhook, clock, retry, pollMs } = deps;
  const batchSize = 20;
  const leaseMs = retry.timeoutMs * 2 + 5_000;
  let timer: NodeJS.Timeout | undefined;
  let current: Promise<void> | undefined;
  let stopped = true;

  async function send(row: store.DbDeliveryRow & { event: store.DbEventRow }, endpoint: WebhookEndpoint): Promise<void> {
    const pending = await store.pendingWebhookCounts(db, [row.event_id]);
    const payload = JSON.stringify(eventObject(row.event, pending.get(row.event_id) ?? 1), null, 2);
    // The signature time is wall-clock time: receivers check it against their own clock.
    const signature = Stripe.webhooks.generateTestHeaderString({
      payload,
      secret: endpoint.secret,
      timestamp: Math.floor(Date.now() / 1000),
    });
    let status: number | null = null;
    let error = '';
    try {
      const res = await fetch(endpoint.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json; charset=utf-8',
          'Stripe-Signature': signature,
          'User-Agent': 'Stripe/1.0 (+https://stripe.com/docs/webhooks)',
          Accept: '*/*; q=0.5, application/xml',
          'Cache-Control': 'no-cache',
        },
        body: payload,
        redirect: 'manual',
        signal: AbortSignal.timeout(retry.timeoutMs),
      });
      status = res.status;
      await res.body?.cancel().catch(() => undefined);
      if (status >= 200 && status < 300) {
        await store.markDelivered(db, row.id, clock(), status);
        logger.info({ eventId: row.event_id, type: row.event.type, attempt: row.attempts, status }, 'stripe emulator: webhook delivered');
        return;
      }
      error = `HTTP ${status}`;
    } catch (err) {
      error = (err as Error).name === 'TimeoutError' ? `timed out after ${retry.timeoutMs} ms` : (err as Error).message;
    }
    const giveUp = row.attempts >= retry.maxAttempts;
    const retryAt = giveUp ? null : new Date(clock().getTime() + retryDelayMs(row.attempts, retry));
    await store.markAttemptFailed(db, row.id, { status, error, retryAt });
    logger.warn(
      { eventId: row.event_id, type: row.event.type, attempt: row.attempts, status, error, retryAt, gaveUp: giveUp },
      'stripe emulator: webhook delivery failed',
    );
  }

  async function deliverDue(): Promise<number> {
    if (!webhook) return 0;
    const attempted: number[] = [];
    for (;;) {
      const rows = await store.claimDueDeliveries(db, { now: clock(), leaseMs, limit: batchSize, excludeIds: attempted });
      if (rows.length === 0) return attempted.length;
      for (const row of rows) {
        attempted.push(row.id);
        await send(row, webhook);
      }
    }
  }

  async function tick(): Promise<void> {
    try {
      await deps.beforeTick?.();
      await deliverDue();
    } catch (err) {
      logger.error({ err }, 'stripe emulator: webhook delivery loop error');
    }
  }

  function schedule(ms: number): void {
    timer = setTimeout(() => {
      current = tick().finally(() => {
        current = undefined;
        if (!stopped) schedule(pollMs);
      });
    }, ms);
    timer.unref();
  }

  return {
    deliverDue,
    start() {
      if (!stopped) return;
      stopped = false;
      schedule(0);
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      await current;
    },
  };
}
