import express from 'express';
import { z } from 'zod';
import { requireAdmin, requireAuth } from '../auth/auth-middleware.ts';
import { NotFoundError } from '../http/errors.ts';
import { validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import * as R from './notifications-responses.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { EmailOutbox } from './email-outbox.ts';
import type { OutboxEmail } from './email-outbox-store.ts';
import type { InboxNotification } from './inbox-store.ts';
import type { NotificationSettings } from './notification-settings-store.ts';
import { decodeCursor, EmailsQuery, encodeCursor, NotificationsQuery, SettingsBody, UuidParams } from './notifications-schemas.ts';
import type { NotificationsService } from './notifications-service.ts';

const EmptyBody = z.object({}).strict();

export const notificationJson = (n: InboxNotification) => ({ id: n.id, type: n.type, title: n.title, body: n.body, link: n.link, createdAt: n.createdAt, read: n.readAt !== null, readAt: n.readAt });

export const settingsJson = (s: NotificationSettings) => ({
  receipts: s.receipts,
  lowBalance: s.lowBalance,
  expiringCredits: s.expiringCredits,
  jobs: s.jobs,
  lowBalanceFloorCredits: s.lowBalanceFloor === null ? null : millicreditsToCredits(s.lowBalanceFloor),
});

export const emailJson = (e: OutboxEmail, withHtml = false) => ({
  id: e.id,
  to: e.to,
  type: e.type,
  subject: e.subject,
  status: e.status,
  attempts: e.attempts,
  lastError: e.lastError,
  createdAt: e.createdAt,
  sentAt: e.sentAt,
  text: e.text,
  ...(withHtml ? { html: e.html } : {}),
});

/**
 * `/api/notifications*` (the notification centre), `/api/account/notification-settings`
 * (preferences) and `/api/admin/emails*` (the email outbox, admins only).
 */
export function createNotificationsRouter(deps: { notifications: NotificationsService; outbox: EmailOutbox }): express.Router {
  const { notifications, outbox } = deps;
  const api = express.Router();

  apiRoute(api, { method: 'get', path: '/notifications', summary: 'Your notification centre, newest first', auth: 'user', request: { query: NotificationsQuery }, responses: { 200: R.NotificationsPage } }, requireAuth, async (req, res) => {
    const q = validate(NotificationsQuery, req, 'query');
    const userId = req.user!.id;
    const page = await notifications.list(userId, { unread: q.unread, limit: q.limit, before: decodeCursor(q.cursor) });
    const last = page.items.at(-1);
    res.json({
      notifications: page.items.map(notificationJson),
      unreadCount: await notifications.unreadCount(userId),
      nextCursor: page.more && last ? encodeCursor(last.createdAt, last.id) : null,
    });
  });

  apiRoute(api, { method: 'post', path: '/notifications/read-all', summary: 'Mark all your notifications read', auth: 'user', request: { body: EmptyBody }, responses: { 200: R.MarkedResponse } }, requireAuth, async (req, res) => {
    validate(EmptyBody, req);
    res.json({ marked: await notifications.markAllRead(req.user!.id), unreadCount: 0 });
  });

  apiRoute(api, { method: 'post', path: '/notifications/:id/read', summary: 'Mark one notification read', auth: 'user', request: { params: UuidParams, body: EmptyBody }, responses: { 200: R.NotificationReadResponse } }, requireAuth, async (req, res) => {
    validate(EmptyBody, req);
    const { id } = validate(UuidParams, req, 'params');
    const n = await notifications.markRead(req.user!.id, id);
    res.json({ notification: notificationJson(n), unreadCount: await notifications.unreadCount(req.user!.id) });
  });

  apiRoute(api, { method: 'get', path: '/account/notification-settings', summary: 'Your notification preferences', tags: ['notifications'], auth: 'user', responses: { 200: R.SettingsResponse } }, requireAuth, async (req, res) => {
    res.json({ settings: settingsJson(await notifications.getSettings(req.user!.id)) });
  });

  apiRoute(api, { method: 'put', path: '/account/notification-settings', summary: 'Change notification preferences (fields left out stay)', tags: ['notifications'], auth: 'user', request: { body: SettingsBody }, responses: { 200: R.SettingsResponse } }, requireAuth, async (req, res) => {
    const body = validate(SettingsBody, req);
    res.json({ settings: settingsJson(await notifications.updateSettings(req.user!.id, body)) });
  });

  apiRoute(api, { method: 'get', path: '/admin/emails', summary: 'The email outbox, newest first', auth: 'admin', request: { query: EmailsQuery }, responses: { 200: R.EmailsPage } }, requireAdmin, async (req, res) => {
    const q = validate(EmailsQuery, req, 'query');
    const limit = q.limit ?? 50;
    const items = await outbox.list({ to: q.to || undefined, type: q.type }, limit + 1, decodeCursor(q.cursor));
    const more = items.length > limit;
    if (more) items.pop();
    const last = items.at(-1);
    res.json({ emails: items.map((e) => emailJson(e)), nextCursor: more && last ? encodeCursor(last.createdAt, last.id) : null });
  });

  apiRoute(api, { method: 'get', path: '/admin/emails/:id', summary: 'One email of the outbox, with its HTML', auth: 'admin', request: { params: UuidParams }, responses: { 200: R.EmailResponse } }, requireAdmin, async (req, res) => {
    const { id } = validate(UuidParams, req, 'params');
    const email = await outbox.find(id);
    if (!email) throw new NotFoundError('email');
    res.json({ email: emailJson(email, true) });
  });

  return api;
}
