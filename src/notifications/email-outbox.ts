import type { Config } from '../config.ts';
import type { Db, Trx } from '../db/database.ts';
import { EMAIL_TYPES, renderEmail, type EmailData, type EmailType } from './email-messages.ts';
import { insertEmail, listEmails, findEmail, type EmailFilters, type OutboxEmail } from './email-outbox-store.ts';
import { getSettings } from './notification-settings-store.ts';

/** The reason stored on messages written while no SMTP server is configured. */
export const NO_SMTP = 'not sent: no SMTP configured';

export interface EnqueueEmail<T extends EmailType> {
  type: T;
  to: string;
  /** The recipient user, when there is one: their preferences decide non-security messages. */
  userId: string | null;
  data: EmailData[T];
  /** One message per cause: a second enqueue with the same key adds nothing. */
  dedupeKey?: string;
}

export type EmailOutbox = ReturnType<typeof createEmailOutbox>;

/**
 * The email outbox: messages are rendered and written in the caller's transaction (so a rollback
 * sends nothing and a crash loses nothing) and sent later by the email sender. Without `SMTP_URL`,
 * they are written as `not_sent` ("not sent: no SMTP configured") and stay readable for admins.
 */
export function createEmailOutbox(deps: { db: Db; config: Pick<Config, 'mail'> }) {
  const { db, config } = deps;
  return {
    /**
     * Renders and stores one message in `trx`. Returns the row, or undefined when the user turned this
     * kind of message off (security messages always go) or `dedupeKey` was used before.
     */
    async enqueue<T extends EmailType>(trx: Db | Trx, msg: EnqueueEmail<T>): Promise<OutboxEmail | undefined> {
      const category = EMAIL_TYPES[msg.type].category;
      if (msg.userId && category !== 'security') {
        const settings = await getSettings(trx, msg.userId);
        if (!settings[categorySetting[category]]) return undefined;
      }
      const rendered = await renderEmail(msg.type, msg.data);
      const configured = Boolean(config.mail.smtpUrl);
      return insertEmail(trx, {
        userId: msg.userId,
        to: msg.to,
        type: msg.type,
        ...rendered,
        status: configured ? 'pending' : 'not_sent',
        lastError: configured ? null : NO_SMTP,
        dedupeKey: msg.dedupeKey ?? null,
      });
    },

    /** Messages newest first (admin view), `limit` 1–200. */
    list(filters: EmailFilters, limit = 50, before?: { createdAt: Date; id: string }): Promise<OutboxEmail[]> {
      return listEmails(db, filters, Math.min(Math.max(limit, 1), 200), before);
    },

    /** One message, or undefined. */
    find(id: string): Promise<OutboxEmail | undefined> {
      return findEmail(db, id);
    },
  };
}

const categorySetting = {
  receipts: 'receipts',
  low_balance: 'lowBalance',
  expiring_credits: 'expiringCredits',
  jobs: 'jobs',
} as const;
