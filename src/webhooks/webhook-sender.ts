import http from 'node:http';
import https from 'node:https';
import type { LookupFunction } from 'node:net';
import { Webhook } from 'standardwebhooks';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { checkUrlShape, resolveAllowedAddress, UnsafeUrlError, type Resolver } from './url-guard.ts';
import * as store from './webhook-store.ts';

/** Deliveries are retried for up to 3 days after the event (issue 13), then failed. */
export const RETRY_WINDOW_MS = 3 * 86_400_000;
/** An endpoint failing without a success for this long is disabled and its owner emailed. */
export const DISABLE_AFTER_MS = 3 * 86_400_000;
const LEASE_MS = 60_000;
const TIMEOUT_MS = 15_000;

/**
 * Exponential backoff: 10 s × 3^(n−1) after the n-th failed attempt, at most 12 h, and a last
 * attempt when the 3 days are up (≈ 14 attempts in all).
 */
export function webhookRetryDelayMs(attempts: number): number {
  return Math.min(10_000 * 3 ** Math.max(0, attempts - 1), 12 * 3_600_000);
}

export interface WebhookSenderDeps {
  db: Db;
  logger: Logger;
  production: boolean;
  pollMs: number;
  resolve?: Resolver;
  clock?: () => Date;
  /** Called in the transaction that disables an endpoint (emails its owner). */
  onEndpointDisabled?: (trx: Trx, endpoint: { id: string; userId: string; url: string; failingSince: Date }) => Promise<void>;
  /** Counts each attempt in `tally_webhook_deliveries_total{outcome}`. */
  metrics?: Pick<Metrics, 'webhookDeliveries'>;
}

interface PostResult {
  ok: boolean;
  status: number | null;
  error: string | null;
  durationMs: number;
}

/** POSTs `body` to `url`, connecting only to `address` (checked), with a timeout. Never throws. */
function post(url: URL, address: { address: string; family: number }, headers: Record<string, string>, body: string): Promise<PostResult> {
  const started = performance.now();
  const lookup: LookupFunction = (_host, opts, cb) => {
    if ((opts as { all?: boolean }).all) (cb as unknown as (e: null, a: Array<{ address: string; family: number }>) => void)(null, [address]);
    else cb(null, address.address, address.family);
  };
  return new Promise((resolve) => {
    const done = (r: Omit<PostResult, 'durationMs'>) => resolve({ ...r, durationMs: Math.round(performance.now() - started) });
    const client = url.protocol === 'https:' ? https : http;
    const req = client.request(
      url,
      { method: 'POST', headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), 'user-agent': 'Tally-Webhooks/1' }, lookup, timeout: TIMEOUT_MS },
      (res) => {
        res.resume(); // the body is not used; drain it
        res.on('end', () => done({ ok: (res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300, status: res.statusCode ?? null, error: null }));
        res.on('error', (err) => done({ ok: false, status: res.statusCode ?? null, error: err.message }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no response within ${TIMEOUT_MS / 1000} s`)));
    req.on('error', (err) => done({ ok: false, status: null, error: err.message }));
    req.end(body);
  });
}

export type WebhookSender = ReturnType<typeof createWebhookSender>;

/**
 * The webhook sender: claims due deliveries (FOR UPDATE SKIP LOCKED with a lease; a delivery whose
 * sender died is claimed again: at least once), signs each per Standard Webhooks (`webhook-id`,
 * `webhook-timestamp`, `webhook-signature` via the `standardwebhooks` package), POSTs it, logs the
 * attempt (status, response code, duration) and retries non-2xx answers with exponential backoff
 * for up to 3 days. An endpoint failing for 3 days is disabled and its owner emailed. In production
 * the resolved address is checked before each connection (SSRF, DNS rebinding).
 */
export function createWebhookSender(deps: WebhookSenderDeps) {
  const { db, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  async function deliver(d: Awaited<ReturnType<typeof store.claimDueDeliveries>>[number]): Promise<boolean> {
    const body = JSON.stringify(d.payload);
    let result: PostResult;
    try {
      const url = checkUrlShape(d.url, { production: deps.production });
      const address = await resolveAllowedAddress(url, { production: deps.production, resolve: deps.resolve });
      const now = clock();
      const signature = new Webhook(d.secret).sign(d.messageId, now, body);
      result = await post(url, address, { 'webhook-id': d.messageId, 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)), 'webhook-signature': signature }, body);
    } catch (err) {
      result = { ok: false, status: null, error: err instanceof UnsafeUrlError ? `refused: ${err.reason}` : (err as Error).message, durationMs: 0 };
    }
    const now = clock();
    const outcome = await inTransaction(db, async (trx): Promise<'succeeded' | 'retrying' | 'failed'> => {
      await store.recordAttempt(trx, d.id, { status: result.ok ? 'succeeded' : 'failed', responseCode: result.status, durationMs: result.durationMs, error: result.error?.slice(0, 500) ?? null });
      if (result.ok) {
        await store.finishDelivery(trx, d.id, { status: 'succeeded', responseCode: result.status, error: null });
        await store.setEndpointFailing(trx, d.endpointId, null);
        return 'succeeded';
      }
      // The last attempt is made when the 3 days are up; after it the delivery has failed for good.
      const windowEnd = d.createdAt.getTime() + RETRY_WINDOW_MS;
      const giveUp = now.getTime() >= windowEnd;
      const retryAt = new Date(Math.min(now.getTime() + webhookRetryDelayMs(d.attempts), windowEnd));
      await store.finishDelivery(trx, d.id, giveUp ? { status: 'failed', responseCode: result.status, error: result.error } : { status: 'pending', responseCode: result.status, error: result.error, nextAttemptAt: retryAt });
      // Failing since the oldest event it has not taken: with no success since, that is when this delivery was queued.
      const failingSince = d.failingSince ?? (d.createdAt < now ? d.createdAt : now);
      await store.setEndpointFailing(trx, d.endpointId, failingSince);
      if (now.getTime() - failingSince.getTime() >= DISABLE_AFTER_MS) {
        const disabled = await store.disableEndpoint(trx, d.endpointId, `Deliveries failed for 3 days (last: ${result.status ?? result.error ?? 'no response'}).`);
        if (disabled) {
          logger.warn({ endpointId: d.endpointId }, 'webhook endpoint disabled after 3 days of failures');
          await deps.onEndpointDisabled?.(trx, { id: d.endpointId, userId: d.userId, url: d.url, failingSince });
        }
      }
      return giveUp ? 'failed' : 'retrying';
    });
    deps.metrics?.webhookDeliveries.inc({ outcome });
    return result.ok;
  }

  async function sendBatch(limit = 20): Promise<number> {
    const batch = await store.claimDueDeliveries(db, clock(), limit, LEASE_MS);
    const results = await Promise.all(batch.map((d) => deliver(d)));
    return results.filter(Boolean).length;
  }

  return {
    /** Delivers what is due now; returns how many succeeded. One batch at a time per process. */
    async runOnce(): Promise<number> {
      running ??= sendBatch().finally(() => {
        running = undefined;
      });
      return running;
    },
    start(): void {
      if (timer) return;
      timer = setInterval(() => {
        this.runOnce().catch((err: unknown) => logger.error({ err }, 'webhook sender failed'));
      }, deps.pollMs);
      timer.unref();
    },
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running?.catch(() => undefined);
    },
  };
}
