import { redirectAfterSave } from './redirect-after-flash.ts';
import express from 'express';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { fieldErrorsOf, formBody } from '../auth/page-forms.ts';
import { setFlash, takeFlash } from '../auth/session.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { NotFoundError, ValidationError } from '../http/errors.ts';
import { parseOrThrow, validate } from '../http/validate.ts';
import { formatCredits } from '../ledger/credits.ts';
import { EMAIL_TYPES } from './email-messages.ts';
import type { EmailOutbox } from './email-outbox.ts';
import { decodeCursor, EmailsQuery, encodeCursor, NotificationsQuery, SettingsBody, UuidParams } from './notifications-schemas.ts';
import type { NotificationsService } from './notifications-service.ts';
import type { RecoveryService } from '../recovery/recovery-service.ts';
import { WEBHOOK_EVENT_TYPES } from '../webhooks/webhook-events.ts';
import type { WebhookService } from '../webhooks/webhook-service.ts';

/** Words for what people read: email types and statuses, notification kinds. */
const EMAIL_TYPE_LABELS: Record<string, string> = {
  receipt: 'Receipt',
  refund: 'Refund',
  password_reset: 'Password reset',
  password_changed: 'Password changed',
  email_verification: 'Email verification',
  low_balance: 'Low balance',
  credits_expiring: 'Credits expiring',
  job_finished: 'Job finished',
  job_failed: 'Job failed',
  webhook_endpoint_disabled: 'Webhook endpoint disabled',
};
const EMAIL_STATUS_LABELS: Record<string, string> = { pending: 'Waiting to send', sending: 'Sending', sent: 'Sent', failed: 'Failed', not_sent: 'Not sent' };

export const notificationViewHelpers = {
  ...viewHelpers,
  emailType: (t: string) => EMAIL_TYPE_LABELS[t] ?? t,
  emailStatus: (s: string) => EMAIL_STATUS_LABELS[s] ?? s,
  credits: formatCredits,
};

/**
 * Pages: /notifications (the notification centre), /account/settings (email preferences and
 * the low-balance floor), /admin/emails (the email outbox, admins only). Forms post back with a
 * CSRF token and redirect (303) or re-render with inline errors (400).
 */
export function createNotificationsPages(deps: { notifications: NotificationsService; outbox: EmailOutbox; webhooks: WebhookService; recovery: RecoveryService }): express.Router {
  const { notifications, outbox, webhooks, recovery } = deps;
  const pages = express.Router();

  pages.get('/notifications', requireAuth, async (req, res) => {
    let q: { unread?: boolean; cursor?: string } = {};
    try {
      q = validate(NotificationsQuery, req, 'query');
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
    }
    const userId = req.user!.id;
    let before: { createdAt: Date; id: string } | undefined;
    try {
      before = decodeCursor(q.cursor);
    } catch {
      before = undefined;
    }
    const page = await notifications.list(userId, { unread: q.unread, limit: 25, before });
    const last = page.items.at(-1);
    const params = new URLSearchParams();
    if (q.unread) params.set('unread', 'true');
    if (page.more && last) params.set('cursor', encodeCursor(last.createdAt, last.id));
    res.render('notifications/index', {
      title: 'Notifications',
      flash: takeFlash(req),
      items: page.items,
      unreadOnly: q.unread === true,
      unreadCount: await notifications.unreadCount(userId),
      olderHref: page.more ? `/notifications?${params}` : undefined,
      isFirstPage: !before,
      fmt: notificationViewHelpers,
    });
  });

  pages.post('/notifications/read-all', requireAuth, async (req, res) => {
    const n = await notifications.markAllRead(req.user!.id);
    setFlash(req, { type: 'success', message: n === 1 ? 'Marked 1 notification as read.' : `Marked ${n} notifications as read.` });
    await redirectAfterSave(req, res, '/notifications');
  });

  pages.post('/notifications/:id/read', requireAuth, async (req, res) => {
    const { id } = validate(UuidParams, req, 'params');
    const n = await notifications.markRead(req.user!.id, id);
    // "Open" follows the link; "Mark as read" stays on the list.
    const follow = (req.body as Record<string, unknown> | undefined)?.open === '1' && n.link?.startsWith('/');
    await redirectAfterSave(req, res, follow ? n.link! : '/notifications');
  });

  async function renderSettings(req: express.Request, res: express.Response, status: number, form?: { values: Record<string, unknown>; errors: Record<string, string> }) {
    const user = req.user!;
    const [settings, endpoints, verifiedAt] = await Promise.all([notifications.getSettings(user.id), webhooks.listEndpoints(user.id), recovery.verifiedAt(user.id)]);
    res.status(status).render('notifications/settings', {
      title: 'Notification settings',
      flash: takeFlash(req),
      settings,
      floor: form ? String(form.values.lowBalanceFloorCredits ?? '') : settings.lowBalanceFloor === null ? '' : formatCredits(settings.lowBalanceFloor),
      errors: form?.errors ?? {},
      endpoints,
      eventTypes: WEBHOOK_EVENT_TYPES,
      verifiedAt,
      email: user.email,
      fmt: notificationViewHelpers,
    });
  }

  pages.get('/account/settings', requireAuth, async (req, res) => {
    await renderSettings(req, res, 200);
  });

  pages.post('/account/settings', requireAuth, async (req, res) => {
    const fields = formBody(req);
    const floorText = typeof fields.lowBalanceFloorCredits === 'string' ? fields.lowBalanceFloorCredits.trim() : '';
    // Unchecked checkboxes are absent from a form post: absent means off.
    const input = {
      receipts: fields.receipts === 'on',
      lowBalance: fields.lowBalance === 'on',
      expiringCredits: fields.expiringCredits === 'on',
      jobs: fields.jobs === 'on',
      lowBalanceFloorCredits: floorText === '' ? null : /^\d+(\.\d+)?$/.test(floorText) ? Number(floorText) : floorText,
    };
    try {
      const body = parseOrThrow(SettingsBody, input, 'body');
      await notifications.updateSettings(req.user!.id, body);
      setFlash(req, { type: 'success', message: 'Your notification settings are saved.' });
      await redirectAfterSave(req, res, '/account/settings');
    } catch (err) {
      const errors = fieldErrorsOf(err);
      if (!errors) throw err;
      if (errors.lowBalanceFloorCredits) errors.lowBalanceFloorCredits = 'must be a number of credits above 0 with at most 3 decimals, or empty for none';
      await renderSettings(req, res, 400, { values: { lowBalanceFloorCredits: floorText }, errors });
    }
  });

  pages.get('/admin/emails', requireAdmin, async (req, res) => {
    let q: { to?: string; type?: string; cursor?: string } = {};
    let filterError: string | undefined;
    let before: { createdAt: Date; id: string } | undefined;
    try {
      q = validate(EmailsQuery, req, 'query');
      before = decodeCursor(q.cursor);
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      filterError = err.errors.map((e) => `${e.field.replace(/^query\./, '')} ${e.message}`).join('; ');
    }
    const items = await outbox.list({ to: q.to || undefined, type: q.type }, 26, before);
    const more = items.length > 25;
    if (more) items.pop();
    const last = items.at(-1);
    const params = new URLSearchParams();
    if (q.to) params.set('to', q.to);
    if (q.type) params.set('type', q.type);
    const firstHref = `/admin/emails${params.size ? `?${params}` : ''}`;
    if (more && last) params.set('cursor', encodeCursor(last.createdAt, last.id));
    res.status(filterError ? 400 : 200).render('notifications/admin-emails', {
      title: 'Emails',
      emails: items,
      filters: { to: typeof req.query.to === 'string' ? req.query.to : '', type: typeof req.query.type === 'string' ? req.query.type : '' },
      types: Object.keys(EMAIL_TYPES),
      filterError,
      isFirstPage: !before,
      firstHref,
      olderHref: more ? `/admin/emails?${params}` : undefined,
      fmt: notificationViewHelpers,
    });
  });

  pages.get('/admin/emails/:id', requireAdmin, async (req, res) => {
    const { id } = validate(UuidParams, req, 'params');
    const email = await outbox.find(id);
    if (!email) throw new NotFoundError('email');
    res.render('notifications/admin-email', { title: email.subject, email, fmt: notificationViewHelpers });
  });

  return pages;
}
