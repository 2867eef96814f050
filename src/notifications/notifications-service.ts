import type { Db } from '../db/database.ts';
import { NotFoundError, ValidationError } from '../http/errors.ts';
import { creditsToMillicredits, formatCredits, InvalidAmountError } from '../ledger/credits.ts';
import * as alerts from './alerts-store.ts';
import * as inbox from './inbox-store.ts';
import { getSettings, saveSettings, type NotificationSettings } from './notification-settings-store.ts';
import type { SettingsBody } from './notifications-schemas.ts';

export type NotificationsService = ReturnType<typeof createNotificationsService>;

/** The user's side of notifications: the notification centre, their preferences and their alert history. */
export function createNotificationsService(deps: { db: Db }) {
  const { db } = deps;
  return {
    /** Newest first; `unread` filters. Returns one page and whether there is more. */
    async list(userId: string, opts: { unread?: boolean; limit?: number; before?: { createdAt: Date; id: string } }) {
      const limit = Math.min(Math.max(opts.limit ?? 50, 1), 200);
      const items = await inbox.listNotifications(db, userId, { unread: opts.unread, limit: limit + 1, before: opts.before });
      const more = items.length > limit;
      if (more) items.pop();
      return { items, more };
    },
    unreadCount(userId: string): Promise<number> {
      return inbox.countUnread(db, userId);
    },
    /** Marks one read; {@link NotFoundError} (404) when it is not the user's. */
    async markRead(userId: string, id: string) {
      const n = await inbox.markRead(db, userId, id);
      if (!n) throw new NotFoundError('notification');
      return n;
    },
    markAllRead(userId: string): Promise<number> {
      return inbox.markAllRead(db, userId);
    },
    getSettings(userId: string): Promise<NotificationSettings> {
      return getSettings(db, userId);
    },
    /**
     * Applies the fields given; the floor is credits (≤ 3 decimals, > 0) or null. Throws
     * {@link ValidationError} (400 on `body.lowBalanceFloorCredits`).
     */
    async updateSettings(userId: string, body: SettingsBody): Promise<NotificationSettings> {
      const current = await getSettings(db, userId);
      let floor = current.lowBalanceFloor;
      if (body.lowBalanceFloorCredits !== undefined) {
        if (body.lowBalanceFloorCredits === null) floor = null;
        else {
          try {
            floor = creditsToMillicredits(body.lowBalanceFloorCredits);
          } catch (err) {
            if (!(err instanceof InvalidAmountError)) throw err;
            throw new ValidationError([{ field: 'body.lowBalanceFloorCredits', message: err.message }]);
          }
          if (floor <= 0) throw new ValidationError([{ field: 'body.lowBalanceFloorCredits', message: 'must be more than 0, or null for none' }]);
        }
      }
      const next: NotificationSettings = {
        receipts: body.receipts ?? current.receipts,
        lowBalance: body.lowBalance ?? current.lowBalance,
        expiringCredits: body.expiringCredits ?? current.expiringCredits,
        jobs: body.jobs ?? current.jobs,
        lowBalanceFloor: floor,
      };
      await saveSettings(db, userId, next);
      return next;
    },
    /** The user's low-balance and expiry alerts, newest first. */
    alertHistory(userId: string, limit = 20) {
      return alerts.listAlerts(db, userId, limit);
    },

    /** What /account shows (views/notifications/_account.ejs): whether the email is verified and the last 20 alerts. */
    async forAccount(userId: string) {
      const [recipient, history] = await Promise.all([alerts.findRecipient(db, userId), alerts.listAlerts(db, userId, 20)]);
      return { verifiedAt: recipient?.emailVerifiedAt ?? null, alerts: history, credits: (m: number | null) => (m === null ? '' : formatCredits(m)) };
    },
  };
}
