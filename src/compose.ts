import type { Config } from './config.ts';
import type { Db } from './db/database.ts';
import type { Infrastructure, Services } from './services.ts';
import { createAdminService } from './admin/admin-service.ts';
import { createAuditLog } from './auth/audit-log.ts';
import { createAuthService } from './auth/auth-service.ts';
import { createLoginThrottle } from './auth/login-throttle.ts';
import { createSessionsService } from './auth/sessions-service.ts';
import { createPricing } from './credits/pricing-service.ts';
import { createIdempotencyKeys } from './idempotency/idempotency-keys.ts';
import { createLedger } from './ledger/ledger-service.ts';
import { createPayments, type PaymentEvents } from './payments/payments-service.ts';
import { withLedgerMetrics } from './ledger/ledger-metrics.ts';
import { createMetrics, type Metrics } from './metrics/metrics.ts';
import { withPaymentMetrics, withWebhookMetrics } from './payments/payments-metrics.ts';
import { createStripeCustomers } from './payments/stripe-customers.ts';
import { createSubscriptions } from './subscriptions/subscriptions-service.ts';
import { createSubscriptionEmails } from './subscriptions/subscription-emails.ts';
import { createNotificationCore, createNotificationServices, type NotificationCore } from './notifications/notifications-services.ts';
import { createStripeWebhook, mergeMoreHandlers } from './payments/stripe-webhook.ts';
import { createAutoRecharge } from './recharge/auto-recharge-service.ts';
import { ownerOfAccount } from './recharge/auto-recharge-store.ts';
import { withAutoRecharge } from './recharge/recharge-ledger.ts';
import { createSpendControls } from './spend/spend-service.ts';
import { createRechargeNotices, createSpendNotices } from './spend/spend-notices.ts';
import { createOcrProcessor } from './tasks/ocr-processor.ts';
import { createOcrWorkerPool, type OcrWorkerPool } from './tasks/ocr-worker-pool.ts';
import { createLocalFileStorage, uploadsDir } from './tasks/file-storage.ts';
import { attemptTimeoutSeconds, type TaskQueue } from './tasks/task-queue.ts';
import { startTaskWorker, type OwnedProcessor, type TaskWorker } from './tasks/task-worker.ts';
import { createTasksService } from './tasks/tasks-service.ts';
import { createGrowth } from './growth/growth-service.ts';
import { createInsight } from './insight/insight-service.ts';
import { withReceiptNumbers } from './insight/receipts-service.ts';
import { createApiKeys } from './api-keys/api-keys-service.ts';
import { createTeams, type InvitationMailer } from './teams/teams-service.ts';
import { withRefusalAudit } from './privacy/refusal-audit.ts';
import { createPrivacyService } from './privacy/privacy-service.ts';

export type { Infrastructure, Services } from './services.ts';

/**
 * The composition root: builds every service of Tally exactly once, on one database. The web app
 * (`createApp(services)`, src/app.ts) and the worker ({@link createWorker}) take what they need
 * from the result; no feature builds a service of its own. No side effects (no timers, no I/O).
 */
export function createServices(config: Readonly<Config>, db: Db, infra: Infrastructure): Services {
  const { logger } = infra;
  // One metrics registry per app (never prom-client's global one): tests build several apps.
  const metrics = createMetrics({ db, processMetrics: config.env !== 'test' });
  const { storage, ledger: grantingLedger, pricing, notificationCore } = createWorkerServices(config, db, { ...infra, metrics });
  const audit = createAuditLog(db, { logger });
  const sessions = createSessionsService({ db, audit });
  const notifications = createNotificationServices({ core: notificationCore, config, db, pgPool: infra.pgPool, logger, stripe: infra.stripe, sessions, audit, metrics, ...infra.notify });
  const idempotency = createIdempotencyKeys(db);
  const growth = createGrowth({ db, ledger: grantingLedger, audit, pgPool: infra.pgPool, config, secret: infra.sessionSecret, stripe: infra.stripe, logger, outbox: notificationCore.outbox, idempotency });
  const customers = createStripeCustomers({ db, stripe: infra.stripe, useEmulator: config.stripe.useEmulator });
  const subscriptions = createSubscriptions({
    db,
    ledger: grantingLedger,
    stripe: infra.stripe,
    customers,
    config,
    logger,
    notify: createSubscriptionEmails({ outbox: notificationCore.outbox, appUrl: config.appUrl }),
  });
  // Receipts read payments through the payments service, which numbers receipts as it fulfills.
  const insight = createInsight({ db, ledger: grantingLedger, stripe: infra.stripe, config, logger, clock: infra.notify?.clock, payments: { getPayment: (id, userId) => payments.getPayment(id, userId) } });
  const payments = withPaymentMetrics(
    createPayments({
      db,
      ledger: grantingLedger,
      stripe: infra.stripe,
      config,
      logger,
      customers,
      events: bothPaymentEvents(withReceiptNumbers(insight.receipts, notifications.paymentHooks), growth.paymentHooks),
      giftPacks: growth.giftPacks,
    }),
    metrics,
  );
  // Auto-recharge gets the user's Stripe customer through payments.ensureCustomer, i.e. `customers` above.
  const autoRecharge = createAutoRecharge({ db, ledger: grantingLedger, stripe: infra.stripe, payments, notifier: createRechargeNotices(db, notifications.notifier), logger, appUrl: config.appUrl });
  // Every spend through this ledger (reserve, debit, one-commit debits, posts by the worker in
  // this process) checks auto-recharge after it commits (issue 14).
  const ledger = withAutoRecharge(grantingLedger, { check: autoRecharge.afterSpend, ownerOfAccount: (id) => ownerOfAccount(db, id), checks: autoRecharge.checks });
  const stripeWebhook = withWebhookMetrics(createStripeWebhook({
    db,
    stripe: infra.stripe,
    webhookSecret: infra.stripeWebhookSecret,
    payments,
    logger,
    offSession: autoRecharge,
    // Saved cards (issue 14): a pack bought with "save this card", setup sessions.
    // customer.deleted (issue 19; after an erasure, or from Stripe's dashboard): auto-recharge drops
    // the saved card (it found the user in its prefetch, before the transaction), customers forget the id.
    more: mergeMoreHandlers(subscriptions.webhookHandlers, autoRecharge.webhookHandlers, customers.webhookHandlers),
  }), metrics);
  const auth = createAuthService({
    db,
    ledger,
    config,
    audit,
    throttle: createLoginThrottle(infra.pgPool, config),
    onSignup: (trx, user) => notifications.recovery.sendVerification(trx, user),
    onSignupExtras: (trx, user, extras) => growth.onSignup(trx, user, extras),
  });
  const admin = createAdminService({ db, ledger, audit });
  const spend = createSpendControls({ db, audit, notifier: createSpendNotices(notifications.notifier) });
  const tasks = createTasksService({ db, ledger, pricing, storage, queue: infra.queue, idempotency, config, logger, spend });
  // Team invitations go through the email outbox, written in the invitation's transaction.
  const invitationMailer: InvitationMailer = infra.invitationMailer ?? {
    async sendInvitation(msg, trx) {
      await notificationCore.outbox.enqueue(trx, {
        type: 'team_invitation',
        to: msg.to,
        userId: null,
        data: { teamName: msg.teamName, inviterName: msg.inviterName, role: msg.role, acceptUrl: msg.acceptUrl, expiresAt: `${msg.expiresAt.toISOString().slice(0, 16).replace('T', ' ')} UTC` },
      });
    },
  };
  const teams = createTeams({ db, ledger, audit, mailer: invitationMailer, appUrl: config.appUrl });
  const apiKeys = createApiKeys({ db, audit });
  const privacy = createPrivacyService({ db, ledger, audit, storage, outbox: notificationCore.outbox, stripe: infra.stripe, config, logger, ...(infra.notify?.clock ? { clock: infra.notify.clock } : {}) });
  return {
    ...infra,
    notify: infra.notify ?? {},
    invitationMailer,
    storage,
    config,
    db,
    metrics,
    ledger,
    audit,
    pricing,
    payments,
    subscriptions,
    stripeWebhook,
    auth,
    sessions,
    admin,
    idempotency,
    tasks,
    teams,
    apiKeys,
    notifications,
    spend,
    autoRecharge,
    privacy,
    insight,
    growth,
  };
}

/** Payment events for two listeners (receipts, then growth's referral rewards), in the payment's transaction. */
function bothPaymentEvents(first: PaymentEvents, second: PaymentEvents): PaymentEvents {
  return {
    async paid(trx, payment) {
      await first.paid(trx, payment);
      await second.paid(trx, payment);
    },
    async refunded(trx, payment, before, after, clawedBack) {
      await first.refunded(trx, payment, before, after, clawedBack);
      await second.refunded(trx, payment, before, after, clawedBack);
    },
  };
}

/**
 * What a job worker needs: the ledger (with its notifications: low-balance alerts fire whichever
 * process spends), pricing and file storage on the database.
 */
export type WorkerServices = Pick<Services, 'config' | 'db' | 'logger' | 'metrics' | 'ledger' | 'pricing' | 'storage'>;

/**
 * The services of a process that only works jobs (`npm run worker`): a subset of
 * {@link createServices}, which builds its own through this function, so both agree.
 */
export function createWorkerServices(
  config: Readonly<Config>,
  db: Db,
  infra: Pick<Infrastructure, 'logger' | 'storage' | 'notify'> & { metrics?: Metrics },
): WorkerServices & { notificationCore: NotificationCore } {
  const clock = infra.notify?.clock;
  const metrics = infra.metrics ?? createMetrics({ db, processMetrics: config.env !== 'test' });
  const ledger = withLedgerMetrics(createLedger(db, { watchSpends: true, ...(clock ? { clock } : {}) }), metrics);
  const notificationCore = createNotificationCore({ config, db, logger: infra.logger, ledger, ...infra.notify });
  return {
    config,
    db,
    metrics,
    logger: infra.logger,
    // refusals at the hold are audited (issue 19), whichever process places the hold
    ledger: withRefusalAudit(notificationCore.ledger, { audit: createAuditLog(db, { logger: infra.logger }), logger: infra.logger }),
    notificationCore,
    pricing: createPricing(db),
    storage: infra.storage ?? createLocalFileStorage(uploadsDir(config)),
  };
}

export interface WorkerOptions {
  /** The started queue (pg-boss) the worker takes jobs from, and renews the leases of. */
  queue: Pick<TaskQueue, 'boss' | 'pollingIntervalSeconds' | 'leaseSeconds'> & Partial<Pick<TaskQueue, 'localWorkerIds' | 'localWakers'>>;
  /** Replaces the OCR processor (tests, bench). Default: Tesseract with the configured limits. */
  createProcessor?: () => OwnedProcessor;
}

/**
 * Starts the OCR worker on `services` (the same ledger, pricing and storage as the web app):
 * `config.tasks.workerConcurrency` job slots sharing one pool of `config.tasks.ocrWorkers`
 * Tesseract workers, started now so the first job finds them warm; stopping the worker closes
 * the pool. Used by `npm start` (unless `WORKER=off`) and `npm run worker`.
 */
export async function createWorker(services: WorkerServices, options: WorkerOptions): Promise<TaskWorker> {
  const { config, logger } = services;
  const limits = { renderDpi: config.tasks.renderDpi, maxPagePixels: config.tasks.maxPagePixels, lowConfidence: config.tasks.lowConfidence };
  let pool: OcrWorkerPool | undefined;
  const sharedPool = () => (pool ??= createOcrWorkerPool({ size: config.tasks.ocrWorkers, logger }));
  let worker: TaskWorker;
  try {
    worker = await startTaskWorker({
      db: services.db,
      ledger: services.ledger,
      pricing: services.pricing,
      storage: services.storage,
      logger,
      metrics: services.metrics,
      queue: options.queue,
      concurrency: config.tasks.workerConcurrency,
      createProcessor: options.createProcessor ?? (() => createOcrProcessor({ ...limits, pool: sharedPool(), logger })),
      sweepIntervalMs: config.sweepIntervalMs,
      maxAttemptSeconds: attemptTimeoutSeconds(config.tasks.holdTimeoutMs, 3),
    });
  } catch (err) {
    await pool?.close();
    throw err;
  }
  return {
    ...worker,
    async stop(timeoutMs?: number) {
      await worker.stop(timeoutMs);
      await pool?.close();
    },
  };
}
