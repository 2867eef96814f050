import express from 'express';
import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { createRecoveryPages } from '../recovery/recovery-pages.ts';
import { createRecoveryRouter } from '../recovery/recovery-router.ts';
import { createWebhooksRouter } from '../webhooks/webhooks-router.ts';
import { createNotificationsPages } from './notifications-pages.ts';
import { createNotificationsRouter } from './notifications-router.ts';

/**
 * The routers of issue 13: the notification centre, notification settings, the admin email
 * outbox, webhook endpoints, password reset and email verification. (The header's unread count is
 * set with the layout's locals in app.ts; /account asks the notifications service itself.)
 */
export function createNotificationsFeature(services: Services): Feature {
  const n = services.notifications;
  const api = express.Router();
  api.use(createNotificationsRouter({ notifications: n.notifications, outbox: n.outbox }));
  api.use(createWebhooksRouter({ webhooks: n.webhooks }));
  api.use(createRecoveryRouter({ recovery: n.recovery }));
  const pages = express.Router();
  pages.use(createNotificationsPages({ notifications: n.notifications, outbox: n.outbox, webhooks: n.webhooks, recovery: n.recovery }));
  pages.use(createRecoveryPages({ recovery: n.recovery }));
  return { api, pages };
}
