import nodemailer, { type Transporter } from 'nodemailer';
import type { Config } from '../config.ts';
import type { Db } from '../db/database.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { claimDueEmails, failStaleSending, markEmailFailed, markEmailSent } from './email-outbox-store.ts';

/** Attempts per message before it is `failed` for good. */
export const EMAIL_MAX_ATTEMPTS = 8;
/** First retry delay; doubles per attempt (Directus `utils/transaction.ts`: 2^attempt × base), capped. */
const RETRY_BASE_MS = 30_000;
const RETRY_CAP_MS = 3_600_000;
/** How long a claimed message may take; a row still `sending` after it is failed, never resent. */
const LEASE_MS = 5 * 60_000;

/** When to try a message again after its `attempts`-th failure: 30 s, 1 min, 2 min, … ≤ 1 h. */
export function emailRetryDelayMs(attempts: number): number {
  return Math.min(RETRY_BASE_MS * 2 ** Math.max(0, attempts - 1), RETRY_CAP_MS);
}

/** A nodemailer SMTP transport for `SMTP_URL` (smtp:// with STARTTLS when offered, smtps:// TLS), with timeouts. */
export function createSmtpTransport(smtpUrl: string): Transporter {
  return nodemailer.createTransport({ url: smtpUrl, connectionTimeout: 30_000, greetingTimeout: 30_000, socketTimeout: 60_000 });
}

export interface EmailSenderDeps {
  db: Db;
  config: Pick<Config, 'mail' | 'outboxPollMs'>;
  logger: Logger;
  /** Default: an SMTP transport for `config.mail.smtpUrl`. */
  transport?: Transporter;
  clock?: () => Date;
  /** Counts each attempt in `tally_email_deliveries_total{outcome}`. */
  metrics?: Pick<Metrics, 'emailDeliveries'>;
}

export type EmailSender = ReturnType<typeof createEmailSender>;

/**
 * The background email sender: claims due outbox rows (FOR UPDATE SKIP LOCKED, a lease, attempts
 * counted at the claim), sends each with nodemailer, and marks it `sent`, `pending` again with
 * exponential backoff, or `failed` (a permanent 5xx SMTP reply, or {@link EMAIL_MAX_ATTEMPTS} used).
 * Each row is handed to the SMTP server at most once: a claim is never repeated, and a row whose
 * sender died mid-send is failed instead of resent. Safe to run in several processes at once.
 * With no SMTP configured it does nothing (rows are written `not_sent`).
 */
export function createEmailSender(deps: EmailSenderDeps) {
  const { db, config, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  const transport = deps.transport ?? (config.mail.smtpUrl ? createSmtpTransport(config.mail.smtpUrl) : undefined);
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;

  async function sendBatch(limit = 20): Promise<number> {
    if (!transport) return 0;
    const now = clock();
    const stale = await failStaleSending(db, now);
    if (stale > 0) logger.warn({ stale }, 'emails interrupted while sending were marked failed');
    const batch = await claimDueEmails(db, now, limit, LEASE_MS);
    let sent = 0;
    for (const email of batch) {
      try {
        const info = await transport.sendMail({ from: config.mail.from, to: email.to, subject: email.subject, text: email.text, html: email.html, headers: { 'X-Tally-Email-Type': email.type } });
        await markEmailSent(db, email.id, info.messageId ?? null);
        deps.metrics?.emailDeliveries.inc({ outcome: 'sent' });
        sent++;
      } catch (err) {
        const e = err as Error & { responseCode?: number };
        const permanent = typeof e.responseCode === 'number' && e.responseCode >= 500;
        const retryAt = permanent || email.attempts >= EMAIL_MAX_ATTEMPTS ? null : new Date(clock().getTime() + emailRetryDelayMs(email.attempts));
        await markEmailFailed(db, email.id, `${e.responseCode ? `${e.responseCode} ` : ''}${e.message}`.slice(0, 500), retryAt);
        deps.metrics?.emailDeliveries.inc({ outcome: retryAt ? 'retrying' : 'failed' });
        logger.warn({ emailId: email.id, attempts: email.attempts, retryAt, code: e.responseCode }, 'email not sent');
      }
    }
    return sent;
  }

  return {
    /** Sends what is due now; returns how many were sent. Runs one batch at a time per process. */
    async runOnce(): Promise<number> {
      running ??= sendBatch().finally(() => {
        running = undefined;
      });
      return running;
    },
    /** Polls every `OUTBOX_POLL_SECONDS` until {@link stop}. */
    start(): void {
      if (timer || !transport) return;
      timer = setInterval(() => {
        this.runOnce().catch((err: unknown) => logger.error({ err }, 'email sender failed'));
      }, config.outboxPollMs);
      timer.unref();
    },
    /** Stops polling and waits for the batch in flight. */
    async stop(): Promise<void> {
      if (timer) clearInterval(timer);
      timer = undefined;
      await running?.catch(() => undefined);
      transport?.close();
    },
  };
}
