import type pg from 'pg';
import type Stripe from 'stripe';
import type { Transporter } from 'nodemailer';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { Logger } from '../logger.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { AuditLog } from '../auth/audit-log.ts';
import type { SessionsService } from '../auth/sessions-service.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { createRecoveryService, type RecoveryService } from '../recovery/recovery-service.ts';
import type { Resolver } from '../webhooks/url-guard.ts';
import { createWebhookSender, type WebhookSender } from '../webhooks/webhook-sender.ts';
import { createWebhookService, type WebhookService } from '../webhooks/webhook-service.ts';
import { withNotifications } from './alerting-ledger.ts';
import { findRecipient } from './alerts-store.ts';
import { createEmailOutbox, type EmailOutbox } from './email-outbox.ts';
import { createEmailSender, type EmailSender } from './email-sender.ts';
import { createEventScanner, type EventScanner } from './event-scanner.ts';
import { createLowBalanceMonitor } from './low-balance.ts';
import { createNotificationsService, type NotificationsService } from './notifications-service.ts';
import { createNotifier, type Notifier } from './notifier.ts';
import { createPaymentNotices, type PaymentHooks } from './payment-notices.ts';

/** What tests may replace: the SMTP transport, the DNS resolver (SSRF checks), the clock. */
export interface NotificationTestHooks {
  transport?: Transporter;
  resolve?: Resolver;
  clock?: () => Date;
}

/**
 * The part of the pipeline every process that moves credits needs (the web app and `npm run
 * worker`): the ledger with notifications hooked in, and what it writes to (outbox, webhooks).
 */
export interface NotificationCore {
  /** The ledger with low-balance checks and `credits.granted` events in each operation's transaction: give this one to every feature. */
  ledger: Ledger;
  outbox: EmailOutbox;
  notifier: Notifier;
  webhooks: WebhookService;
}

/**
 * Builds the {@link NotificationCore} on the plain ledger from `createLedger`. No side effects.
 */
export function createNotificationCore(deps: { config: Readonly<Config>; db: Db; ledger: Ledger; logger: Logger } & Pick<NotificationTestHooks, 'resolve' | 'clock'>): NotificationCore {
  const { config, db } = deps;
  const outbox = createEmailOutbox({ db, config });
  const webhooks = createWebhookService({ db, production: config.isProduction, resolve: deps.resolve, clock: deps.clock });
  const notifier = createNotifier({ db, config, outbox, webhooks });
  const lowBalance = createLowBalanceMonitor({ ledger: deps.ledger, notifier });
  return { ledger: withNotifications(deps.ledger, { db, lowBalance, notifier, logger: deps.logger }), outbox, notifier, webhooks };
}

export interface NotificationServices extends NotificationCore {
  notifications: NotificationsService;
  recovery: RecoveryService;
  /** For the payments service: receipts and refund notices in the payment's transaction. */
  paymentHooks: PaymentHooks;
  emailSender: EmailSender;
  webhookSender: WebhookSender;
  scanner: EventScanner;
  /** Starts the email and webhook senders and the event sweep (background timers, unref'd). */
  start(): void;
  /** Stops them and waits for the batches in flight. */
  stop(): Promise<void>;
}

export interface NotificationServicesDeps extends NotificationTestHooks {
  core: NotificationCore;
  config: Readonly<Config>;
  db: Db;
  pgPool: pg.Pool;
  logger: Logger;
  stripe: Stripe;
  sessions: SessionsService;
  audit: AuditLog;
  /** Email and outbound webhook deliveries by outcome (`/metrics`). */
  metrics?: Pick<Metrics, 'emailDeliveries' | 'webhookDeliveries'>;
}

/**
 * Builds the rest of the notification pipeline (issue 13) on its core: the SMTP sender, the
 * notification centre, expiry and task notices, password reset / email verification, receipts,
 * and the webhook sender. Side-effect free until {@link NotificationServices.start}.
 */
export function createNotificationServices(deps: NotificationServicesDeps): NotificationServices {
  const { config, db, logger, core } = deps;
  const { outbox, notifier } = core;
  const production = config.isProduction;
  const emailSender = createEmailSender({ db, config, logger, transport: deps.transport, clock: deps.clock, metrics: deps.metrics });
  const webhookSender = createWebhookSender({
    db,
    logger,
    production,
    pollMs: config.outboxPollMs,
    resolve: deps.resolve,
    clock: deps.clock,
    metrics: deps.metrics,
    async onEndpointDisabled(trx, endpoint) {
      const owner = await findRecipient(trx, endpoint.userId);
      if (!owner) return;
      await outbox.enqueue(trx, {
        type: 'webhook_endpoint_disabled',
        to: owner.email,
        userId: owner.id,
        dedupeKey: `endpoint_disabled:${endpoint.id}`,
        data: { name: owner.name, url: endpoint.url, since: viewHelpers.dateTime(endpoint.failingSince), webhooksUrl: `${config.appUrl}/account/settings#webhooks` },
      });
    },
  });
  const scanner = createEventScanner({ db, notifier, logger, clock: deps.clock });
  let sweep: NodeJS.Timeout | undefined;
  let sweeping: Promise<unknown> | undefined;

  return {
    ...core,
    notifications: createNotificationsService({ db }),
    recovery: createRecoveryService({ db, pgPool: deps.pgPool, config, outbox, sessions: deps.sessions, audit: deps.audit, logger, clock: deps.clock }),
    paymentHooks: createPaymentNotices({ notifier, stripe: deps.stripe, logger }),
    emailSender,
    webhookSender,
    scanner,
    start() {
      emailSender.start();
      webhookSender.start();
      sweep ??= setInterval(() => {
        sweeping ??= scanner
          .runOnce()
          .catch((err: unknown) => logger.error({ err }, 'notification sweep failed'))
          .finally(() => {
            sweeping = undefined;
          });
      }, config.sweepIntervalMs);
      sweep.unref();
    },
    async stop() {
      if (sweep) clearInterval(sweep);
      sweep = undefined;
      await Promise.all([emailSender.stop(), webhookSender.stop(), sweeping, this.recovery.settled()]);
    },
  };
}
