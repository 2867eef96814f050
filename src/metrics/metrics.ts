import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Db } from '../db/database.ts';
import { readGauges } from './metrics-store.ts';

/** Seconds buckets of HTTP requests: 5 ms … 10 s (an upload or a PDF may take seconds). */
const HTTP_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Seconds buckets of OCR jobs: 0.1 s … 30 min. */
const JOB_BUCKETS = [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800];
/** Pages per second of OCR jobs. */
const PAGE_RATE_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 25, 50];

export interface MetricsOptions {
  /** The database the scrape-time gauges read (active holds, credits outstanding, queue depth). */
  db?: Db;
  /** Node.js process metrics (event loop lag, heap, GC). Default true; tests turn them off. */
  processMetrics?: boolean;
}

/**
 * The Prometheus metrics of one Tally process, on a registry of its own (never prom-client's
 * global default), built once by the composition root (src/compose.ts) so several apps in one
 * process (tests) never share counters. Counters and histograms are moved by the code that does
 * the work (HTTP middleware, ledger, payments, Stripe webhook, task runner, email and webhook
 * senders); the gauges are read from the database when Prometheus scrapes, one query each.
 *
 * Names follow Prometheus conventions: `tally_` prefix, base units (seconds), `_total` counters.
 */
export function createMetrics(options: MetricsOptions = {}) {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: 'tally_' });
  const registers = [registry];
  const db = options.db;

  /** One read of the database per scrape, shared by the gauges it feeds. */
  let pending: Promise<Awaited<ReturnType<typeof readGauges>> | undefined> | undefined;
  const gauges = () => {
    pending ??= (db ? readGauges(db) : Promise.resolve(undefined)).finally(() => {
      // Let the next scrape read again; the gauges of this one all got the same snapshot.
      setImmediate(() => (pending = undefined));
    });
    return pending;
  };

  const metrics = {
    registry,
    httpRequestDuration: new Histogram({
      name: 'tally_http_request_duration_seconds',
      help: 'HTTP requests by method, route pattern (e.g. /api/tasks/:id; "unmatched" when no route answered) and status code.',
      labelNames: ['method', 'route', 'status'] as const,
      buckets: HTTP_BUCKETS,
      registers,
    }),
    ledgerOperations: new Counter({
      name: 'tally_ledger_operations_total',
      help: 'Ledger operations by kind (grant, reserve, post, void, debit, clawback, expire_lot, …) and outcome (ok, replayed, or the refusal code such as insufficient_credits; error for anything else).',
      labelNames: ['kind', 'outcome'] as const,
      registers,
    }),
    payments: new Counter({
      name: 'tally_payments_total',
      help: 'Payment steps by step (checkout, confirm, refund) and outcome (created, fulfilled, already_fulfilled, not_paid, requested, error, …).',
      labelNames: ['step', 'outcome'] as const,
      registers,
    }),
    stripeWebhookEvents: new Counter({
      name: 'tally_stripe_webhook_events_total',
      help: 'Stripe webhook deliveries received, by outcome (fulfilled, duplicate, ignored, refunded, invalid_signature, invalid_event, failed, …).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    jobDuration: new Histogram({
      name: 'tally_job_duration_seconds',
      help: 'OCR job attempts, from start to settlement, by outcome (completed, failed, retrying, superseded, skipped, error).',
      labelNames: ['outcome'] as const,
      buckets: JOB_BUCKETS,
      registers,
    }),
    jobPages: new Counter({
      name: 'tally_job_pages_total',
      help: 'Pages processed by completed OCR jobs (rate() of it is pages per second over all workers).',
      registers,
    }),
    jobPagesPerSecond: new Histogram({
      name: 'tally_job_pages_per_second',
      help: 'Pages per second of each completed OCR job (its pages over its processing time).',
      buckets: PAGE_RATE_BUCKETS,
      registers,
    }),
    emailDeliveries: new Counter({
      name: 'tally_email_deliveries_total',
      help: 'Email send attempts by outcome: sent, retrying (temporary failure), failed (permanent or out of attempts).',
      labelNames: ['outcome'] as const,
      registers,
    }),
    webhookDeliveries: new Counter({
      name: 'tally_webhook_deliveries_total',
      help: 'Outbound webhook delivery attempts by outcome: succeeded, retrying, failed (gave up after 3 days).',
      labelNames: ['outcome'] as const,
      registers,
    }),
  };

  new Gauge({
    name: 'tally_holds_active',
    help: 'Holds not yet posted, voided or expired (read from the database at scrape).',
    registers,
    async collect() {
      const g = await gauges();
      if (g) this.set(g.activeHolds);
    },
  });
  new Gauge({
    name: 'tally_holds_active_credits',
    help: 'Credits earmarked by active holds (read from the database at scrape).',
    registers,
    async collect() {
      const g = await gauges();
      if (g) this.set(g.heldMillicredits / 1000);
    },
  });
  new Gauge({
    name: 'tally_credits_outstanding',
    help: 'Credits granted and not yet spent or expired (lot remainders), by lot source (read from the database at scrape).',
    labelNames: ['source'] as const,
    registers,
    async collect() {
      const g = await gauges();
      if (!g) return;
      this.reset();
      for (const [source, millicredits] of Object.entries(g.outstandingBySource)) this.set({ source }, millicredits / 1000);
    },
  });
  new Gauge({
    name: 'tally_queue_jobs',
    help: 'Jobs in the pg-boss queues by queue and state (created, retry, active), read from the database at scrape.',
    labelNames: ['queue', 'state'] as const,
    registers,
    async collect() {
      const g = await gauges();
      if (!g) return;
      this.reset();
      for (const row of g.queue) this.set({ queue: row.queue, state: row.state }, row.count);
    },
  });

  return metrics;
}

export type Metrics = ReturnType<typeof createMetrics>;

/**
 * The outcome label of a failed operation: the stable `code` of a domain or app error
 * (`insufficient_credits`, `idempotency_conflict`, …), else `error`.
 */
export function outcomeOf(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[a-z][a-z0-9_]{0,40}$/.test(code) ? code : 'error';
}
