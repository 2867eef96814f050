import express from 'express';
import { formatCredits } from '../ledger/credits.ts';
import { createRecoveryPages } from '../recovery/recovery-pages.ts';
import { createRecoveryRouter } from '../recovery/recovery-router.ts';
import { createWebhooksRouter } from '../webhooks/webhooks-router.ts';
import { createNotificationsPages, unreadCountLocals } from './notifications-pages.ts';
import { createNotificationsRouter } from './notifications-router.ts';
import type { NotificationServices } from './notifications-services.ts';

/**
 * The routers of issue 13: the notification centre, notification settings, the admin email
 * outbox, webhook endpoints, password reset and email verification; plus `accountLocals`, a
 * middleware for /account (mounted before the account page) that provides `res.locals.notices`
 * (verification state and alert history) and the header's unread count.
 */
export function createNotificationsFeature(n: NotificationServices) {
  const api = express.Router();
  api.use(createNotificationsRouter({ notifications: n.notifications, outbox: n.outbox }));
  api.use(createWebhooksRouter({ webhooks: n.webhooks }));
  api.use(createRecoveryRouter({ recovery: n.recovery }));

  const locals = express.Router();
  locals.use(unreadCountLocals(n.notifications));
  locals.get('/account', async (req, res, next) => {
    if (req.user) {
      const [verifiedAt, alerts] = await Promise.all([n.recovery.verifiedAt(req.user.id), n.notifications.alertHistory(req.user.id)]);
      res.locals.notices = { verifiedAt, alerts, credits: (m: number | null) => (m === null ? '' : formatCredits(m)) };
    }
    next();
  });

  const pages = express.Router();
  pages.use(createNotificationsPages({ notifications: n.notifications, outbox: n.outbox, webhooks: n.webhooks, recovery: n.recovery }));
  pages.use(createRecoveryPages({ recovery: n.recovery }));
  return { api, locals, pages };
}
