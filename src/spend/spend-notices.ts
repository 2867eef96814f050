import type { Db } from '../db/database.ts';
import { formatCredits, millicreditsToCredits } from '../ledger/credits.ts';
import type { Notifier } from '../notifications/notifier.ts';
import type { RechargeNotice, RechargeNotifier } from '../recharge/auto-recharge-service.ts';
import type { SpendNotifier } from './spend-service.ts';

const fmtDate = new Intl.DateTimeFormat('en-GB', { dateStyle: 'medium', timeStyle: 'short', timeZone: 'UTC' });

/**
 * Cap alerts through the notification pipeline (issue 13): the notification centre, email
 * (`spend_cap_reached`, under the low-balance preference) and the webhook `spend_cap.reached`,
 * each written in the transaction that marks the alert delivered.
 */
export function createSpendNotices(notifier: Notifier): SpendNotifier {
  return {
    async capReached(trx, a) {
      const cap = a.cap === 'daily' ? 'daily' : 'monthly';
      const used = formatCredits(a.used);
      const limit = formatCredits(a.limit);
      await notifier.notify(trx, {
        userId: a.userId,
        inbox: {
          type: 'spend_cap.reached',
          title: a.threshold >= 100 ? `Your ${cap} spending cap is reached` : `${a.threshold}% of your ${cap} spending cap used`,
          body: `You have used ${used} of ${limit} credits this ${a.cap === 'daily' ? 'day' : 'month'}.`,
          link: '/account/settings/credits',
        },
        email: {
          type: 'spend_cap_reached',
          dedupeKey: `spend_cap:${a.id}`,
          data: (r) => ({ name: r.name, cap, threshold: a.threshold, limit, used, limitsUrl: `${notifier.appUrl}/account/settings/credits`, settingsUrl: `${notifier.appUrl}/account/settings` }),
        },
        webhook: {
          type: 'spend_cap.reached',
          eventId: `spend_cap.reached:${a.id}`,
          data: { cap: a.cap, threshold: a.threshold, limit: millicreditsToCredits(a.limit), used: millicreditsToCredits(a.used), periodStart: a.periodStart.toISOString() },
        },
      });
    },
  };
}

/** Auto-recharge notices through the notification pipeline: centre, email (`auto_recharge`), webhook `auto_recharge.*`. */
export function createRechargeNotices(db: Db, notifier: Notifier): RechargeNotifier {
  const settingsLink = '/account/settings/credits#auto-recharge';
  function describe(n: RechargeNotice): { type: 'auto_recharge.succeeded' | 'auto_recharge.failed' | 'auto_recharge.action_required' | 'auto_recharge.limit_reached' | 'auto_recharge.disabled'; title: string; body: string; link: string | null; linkText: string | null; id: string } {
    switch (n.kind) {
      case 'succeeded':
        return { type: 'auto_recharge.succeeded', title: 'Auto-recharge added credits', body: 'Your saved card was charged and the credits were added.', link: null, linkText: null, id: n.rechargeId };
      case 'failed':
        return {
          type: 'auto_recharge.failed',
          title: 'Auto-recharge failed',
          body: `Your saved card was not charged: ${n.message} (${n.consecutiveFailures} of 3 attempts in a row; after 3, auto-recharge turns off).`,
          link: `${notifier.appUrl}${settingsLink}`,
          linkText: 'Check your auto-recharge settings',
          id: `${n.rechargeId}`,
        };
      case 'authentication_required':
        return {
          type: 'auto_recharge.action_required',
          title: 'Confirm your auto-recharge payment',
          body: 'Your bank asks you to confirm this payment. Auto-recharge is paused until you do.',
          link: n.checkoutUrl,
          linkText: 'Finish the payment',
          id: n.rechargeId,
        };
      case 'daily_limit':
      case 'monthly_ceiling':
        return {
          type: 'auto_recharge.limit_reached',
          title: n.kind === 'daily_limit' ? 'Auto-recharge reached its daily limit' : 'Auto-recharge reached its monthly limit',
          body: `No more automatic purchases until ${fmtDate.format(n.resetsAt)} UTC.`,
          link: `${notifier.appUrl}${settingsLink}`,
          linkText: 'Change the limits',
          id: `${n.kind}:${n.resetsAt.toISOString()}`,
        };
      case 'disabled':
        return {
          type: 'auto_recharge.disabled',
          title: 'Auto-recharge is off',
          body: n.reason === 'failures' ? 'The last three automatic purchases failed, so auto-recharge is off.' : 'Your saved card was deleted, so auto-recharge is off.',
          link: `${notifier.appUrl}${settingsLink}`,
          linkText: 'Turn it on again',
          id: `disabled:${n.reason}:${Date.now()}`,
        };
    }
  }
  return {
    async notify(userId, n) {
      const d = describe(n);
      await notifier.notify(db, {
        userId,
        inbox: { type: d.type, title: d.title, body: d.body, link: d.link },
        email: { type: 'auto_recharge', dedupeKey: `${d.type}:${d.id}`, data: (r) => ({ name: r.name, subject: d.title, body: d.body, link: d.link, linkText: d.linkText, settingsUrl: `${notifier.appUrl}/account/settings` }) },
        webhook: { type: d.type, eventId: `${d.type}:${userId}:${d.id}`, data: { kind: n.kind, ...('rechargeId' in n ? { rechargeId: n.rechargeId } : {}) } },
      });
    },
  };
}
