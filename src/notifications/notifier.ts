import type { Config } from '../config.ts';
import type { Db, Trx } from '../db/database.ts';
import type { WebhookEventType } from '../webhooks/webhook-events.ts';
import type { WebhookService } from '../webhooks/webhook-service.ts';
import { findRecipient, type Recipient } from './alerts-store.ts';
import type { EmailData, EmailType } from './email-messages.ts';
import type { EmailOutbox } from './email-outbox.ts';
import { insertNotification } from './inbox-store.ts';

/** One thing to tell a user, on any of the three channels. */
export interface Notice<T extends EmailType = EmailType> {
  userId: string;
  /** In the notification centre (always, when given). */
  inbox?: { type: string; title: string; body: string; link?: string | null };
  /** Emailed according to the user's preferences; `data` gets the recipient's name added. */
  email?: { type: T; data: (r: Recipient) => EmailData[T]; dedupeKey?: string };
  /** Sent to the user's endpoints subscribed to `type`; `eventId` deduplicates. */
  webhook?: { type: WebhookEventType; data: Record<string, unknown>; eventId: string };
}

export type Notifier = ReturnType<typeof createNotifier>;

/**
 * The one pipeline every feature notifies through: in `trx` (the causing transaction), it records
 * the notification-centre entry, writes the email to the outbox (preferences permitting) and queues
 * the webhook deliveries. Nothing leaves before `trx` commits; a rollback sends nothing.
 */
export function createNotifier(deps: { db: Db; config: Pick<Config, 'appUrl'>; outbox: EmailOutbox; webhooks: WebhookService }) {
  const { outbox, webhooks } = deps;
  return {
    appUrl: deps.config.appUrl,
    async notify<T extends EmailType>(trx: Db | Trx, n: Notice<T>): Promise<void> {
      if (n.inbox) await insertNotification(trx, { userId: n.userId, type: n.inbox.type, title: n.inbox.title, body: n.inbox.body, link: n.inbox.link ?? null });
      if (n.email) {
        const recipient = await findRecipient(trx, n.userId);
        if (recipient) {
          await outbox.enqueue(trx, { type: n.email.type, to: recipient.email, userId: n.userId, data: n.email.data(recipient), ...(n.email.dedupeKey ? { dedupeKey: n.email.dedupeKey } : {}) });
        }
      }
      if (n.webhook) await webhooks.emit(trx, n.userId, n.webhook.type, n.webhook.data, n.webhook.eventId);
    },
  };
}
