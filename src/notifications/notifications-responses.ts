import { z } from 'zod';
import { Credits, DateTime } from '../credits/credits-responses.ts';

/** zod schemas of the notification and webhook-endpoint JSON the API returns, for the OpenAPI document. */

export const NotificationJson = z
  .object({ id: z.uuid(), type: z.string(), title: z.string(), body: z.string(), link: z.string().nullable(), createdAt: DateTime, read: z.boolean(), readAt: DateTime.nullable() })
  .meta({ id: 'Notification' });

export const NotificationsPage = z.object({ notifications: z.array(NotificationJson), unreadCount: z.number().int(), nextCursor: z.string().nullable() });
export const MarkedResponse = z.object({ marked: z.number().int(), unreadCount: z.number().int() });
export const NotificationReadResponse = z.object({ notification: NotificationJson, unreadCount: z.number().int() });

export const SettingsJson = z.object({
  receipts: z.boolean(),
  lowBalance: z.boolean(),
  expiringCredits: z.boolean(),
  jobs: z.boolean(),
  lowBalanceFloorCredits: Credits.nullable(),
});
export const SettingsResponse = z.object({ settings: SettingsJson });

export const EmailJson = z
  .object({
    id: z.uuid(),
    to: z.string(),
    type: z.string(),
    subject: z.string(),
    status: z.string().describe('pending, sending, sent, failed, not_sent'),
    attempts: z.number().int(),
    lastError: z.string().nullable(),
    createdAt: DateTime,
    sentAt: DateTime.nullable(),
    text: z.string(),
    html: z.string().optional(),
  })
  .meta({ id: 'Email' });
export const EmailsPage = z.object({ emails: z.array(EmailJson), nextCursor: z.string().nullable() });
export const EmailResponse = z.object({ email: EmailJson });

export const EndpointJson = z
  .object({
    id: z.uuid(),
    url: z.string(),
    events: z.array(z.string()),
    description: z.string().nullable(),
    status: z.enum(['enabled', 'disabled']),
    disabledReason: z.string().nullable(),
    failingSince: DateTime.nullable(),
    createdAt: DateTime,
  })
  .meta({ id: 'WebhookEndpoint' });

export const DeliveryJson = z
  .object({
    id: z.uuid(),
    messageId: z.string(),
    type: z.string(),
    status: z.enum(['pending', 'delivering', 'succeeded', 'failed']),
    attempts: z.number().int(),
    nextAttemptAt: DateTime.nullable(),
    lastResponseCode: z.number().int().nullable(),
    lastError: z.string().nullable(),
    createdAt: DateTime,
    completedAt: DateTime.nullable(),
    payload: z.record(z.string(), z.unknown()),
    attemptLog: z.array(
      z.object({ attemptedAt: DateTime, status: z.enum(['succeeded', 'failed']), responseCode: z.number().int().nullable(), durationMs: z.number(), error: z.string().nullable() }),
    ),
  })
  .meta({ id: 'WebhookDelivery' });
