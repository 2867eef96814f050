import type pg from 'pg';
import type Stripe from 'stripe';
import type { AdminService } from './admin/admin-service.ts';
import type { ApiKeys } from './api-keys/api-keys-service.ts';
import type { Teams, InvitationMailer } from './teams/teams-service.ts';
import type { AuditLog } from './auth/audit-log.ts';
import type { AuthService } from './auth/auth-service.ts';
import type { SessionsService } from './auth/sessions-service.ts';
import type { Config } from './config.ts';
import type { Pricing } from './credits/pricing-service.ts';
import type { Db } from './db/database.ts';
import type { IdempotencyKeys } from './idempotency/idempotency-keys.ts';
import type { Ledger } from './ledger/ledger-service.ts';
import type { Logger } from './logger.ts';
import type { Metrics } from './metrics/metrics.ts';
import type { Payments } from './payments/payments-service.ts';
import type { SpendControls } from './spend/spend-service.ts';
import type { AutoRecharge } from './recharge/auto-recharge-service.ts';
import type { Subscriptions } from './subscriptions/subscriptions-service.ts';
import type { NotificationServices, NotificationTestHooks } from './notifications/notifications-services.ts';
import type { StripeWebhook } from './payments/stripe-webhook.ts';
import type { FileStorage } from './tasks/file-storage.ts';
import type { JobSender, TasksService } from './tasks/tasks-service.ts';
import type { Growth } from './growth/growth-service.ts';
import type { PrivacyService } from './privacy/privacy-service.ts';
import type { Insight } from './insight/insight-service.ts';

/**
 * What the composition root gets from outside: connections and clients that are opened, started
 * or configured per process (and that tests replace). Nothing here holds business rules.
 */
export interface Infrastructure {
  /** A plain pg pool on the same database (sessions, rate limiting). */
  pgPool: pg.Pool;
  logger: Logger;
  /** The one Stripe client: api.stripe.com, or the emulator in development. */
  stripe: Stripe;
  sessionSecret: string;
  /** Signing secret of our Stripe webhook endpoint (whsec_…): configured, or the emulator's. */
  stripeWebhookSecret: string;
  /** The job queue as the web app uses it (send, cancel). A test may pass a no-op sender. */
  queue: JobSender;
  /** Where uploads are kept. Default: local disk under `${DATA_DIR}/uploads`. */
  storage?: FileStorage;
  /** Sends team invitation emails. Default: the email outbox (src/notifications). */
  invitationMailer?: InvitationMailer;
  /** Tests: the SMTP transport, DNS resolver and clock of the notification pipeline. */
  notify?: NotificationTestHooks;
}

/**
 * Every service of Tally, built once by `createServices` (src/compose.ts) and handed to
 * `createApp` and `createWorker`. Features talk to each other only through these.
 */
export interface Services extends Required<Infrastructure> {
  config: Readonly<Config>;
  db: Db;
  /** Prometheus metrics of this process on their own registry (`GET /metrics`). */
  metrics: Metrics;
  ledger: Ledger;
  audit: AuditLog;
  pricing: Pricing;
  payments: Payments;
  /** Subscription plans on Stripe Billing and their credits. */
  subscriptions: Subscriptions;
  /** Our Stripe webhook endpoint's logic: verify, parse, deduplicate, dispatch. */
  stripeWebhook: StripeWebhook;
  auth: AuthService;
  sessions: SessionsService;
  admin: AdminService;
  /** Idempotency-Keys of requests, remembered 24 h. */
  idempotency: IdempotencyKeys;
  tasks: TasksService;
  teams: Teams;
  apiKeys: ApiKeys;
  /** Emails, the notification centre, alerts, webhooks, password reset (its `ledger` is `ledger`). */
  notifications: NotificationServices;
  /** Promo codes, referrals, visitors' trial credits, gifts (issue 17). */
  growth: Growth;
  /** Spend caps' settings, hard caps and cap alerts (enforced by the ledger at the hold). */
  spend: SpendControls;
  /** Auto-recharge: saved card, threshold, guardrails; fulfilled by the Stripe webhook. */
  autoRecharge: AutoRecharge;
  /** Data export, erasure and retention (GDPR; issue 19). */
  privacy: PrivacyService;
  /** Usage, stats and statements of users, receipts, and the admin reports (issue 18). */
  insight: Insight;
}
