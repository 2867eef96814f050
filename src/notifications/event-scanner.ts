import { inTransaction, type Db } from '../db/database.ts';
import { formatCredits, millicreditsToCredits } from '../ledger/credits.ts';
import type { Logger } from '../logger.ts';
import * as store from './alerts-store.ts';
import type { Notifier } from './notifier.ts';
import { viewHelpers } from '../credits/view-helpers.ts';

/** Credits expiring within this many days get their notice (issue 13: 7 days). */
export const EXPIRY_NOTICE_DAYS = 7;
/** Sweeps look back this far for expired lots and holds and finished tasks to announce. */
const LOOKBACK_MS = 86_400_000;
const BATCH = 200;

export type EventScanner = ReturnType<typeof createEventScanner>;

/**
 * Announces what the sweeper and the worker did without a user request: credits expiring within
 * 7 days (one notice per lot: unique key on the lot), lots that expired (`credits.expired`), holds
 * the sweeper voided (`hold.expired`) and finished tasks (`task.completed` / `task.failed`, and the
 * opt-in job email). Each notice is claimed by a unique key in the same transaction that writes it,
 * so concurrent sweeps from several processes announce each thing once.
 */
export function createEventScanner(deps: { db: Db; notifier: Notifier; logger: Logger; clock?: () => Date }) {
  const { db, notifier } = deps;
  const clock = deps.clock ?? (() => new Date());
  const url = (path: string) => `${notifier.appUrl}${path}`;

  async function expiring(now: Date): Promise<number> {
    let n = 0;
    const lots = await store.lotsExpiringWithoutNotice(db, now, new Date(now.getTime() + EXPIRY_NOTICE_DAYS * 86_400_000), BATCH);
    for (const lot of lots) {
      await inTransaction(db, async (trx) => {
        if (!(await store.insertExpiringAlert(trx, lot))) return;
        n++;
        const credits = formatCredits(lot.remaining);
        const when = viewHelpers.date(lot.expiresAt);
        await notifier.notify(trx, {
          userId: lot.userId,
          inbox: { type: 'credits.expiring', title: 'Credits expire soon', body: `${credits} credits expire on ${when}.`, link: '/account#lots' },
          email: {
            type: 'credits_expiring',
            dedupeKey: `credits_expiring:${lot.lotId}`,
            data: (r) => ({ name: r.name, credits, expiresAt: when, accountUrl: url('/account#lots'), settingsUrl: url('/account/settings') }),
          },
          webhook: { type: 'credits.expiring', eventId: `credits.expiring:${lot.lotId}`, data: { lotId: lot.lotId, source: lot.source, credits: millicreditsToCredits(lot.remaining), expiresAt: lot.expiresAt } },
        });
      });
    }
    return n;
  }

  async function expired(now: Date): Promise<number> {
    let n = 0;
    for (const t of await store.expiredLotsWithoutNotice(db, new Date(now.getTime() - LOOKBACK_MS), BATCH)) {
      await inTransaction(db, async (trx) => {
        if (!(await store.claimNotice(trx, 'credits.expired', t.transfer_id))) return;
        n++;
        await notifier.notify(trx, {
          userId: t.user_id,
          webhook: { type: 'credits.expired', eventId: `credits.expired:${t.transfer_id}`, data: { transferId: t.transfer_id, lotId: t.lot_id, credits: millicreditsToCredits(Number(t.amount)), expiredAt: t.created_at } },
        });
      });
    }
    for (const h of await store.expiredHoldsWithoutNotice(db, new Date(now.getTime() - LOOKBACK_MS), BATCH)) {
      await inTransaction(db, async (trx) => {
        if (!(await store.claimNotice(trx, 'hold.expired', h.id))) return;
        n++;
        await notifier.notify(trx, {
          userId: h.user_id,
          webhook: {
            type: 'hold.expired',
            eventId: `hold.expired:${h.id}`,
            data: { holdId: h.id, credits: millicreditsToCredits(Number(h.amount)), reference: h.reference_type ? { type: h.reference_type, id: h.reference_id } : null, expiredAt: h.resolved_at },
          },
        });
      });
    }
    return n;
  }

  async function tasks(now: Date): Promise<number> {
    let n = 0;
    for (const t of await store.finishedTasksWithoutNotice(db, new Date(now.getTime() - LOOKBACK_MS), BATCH)) {
      await inTransaction(db, async (trx) => {
        if (!(await store.claimNotice(trx, 'task.finished', t.notice_ref))) return;
        n++;
        const taskUrl = url(`/tasks/${t.id}`);
        const ok = t.status === 'completed';
        const charged = t.charged_millicredits === null ? 0 : Number(t.charged_millicredits);
        await notifier.notify(trx, {
          userId: t.user_id,
          inbox: ok
            ? { type: 'task.completed', title: 'Job finished', body: `${t.file_name} is done (${formatCredits(charged)} credits).`, link: `/tasks/${t.id}` }
            : { type: 'task.failed', title: 'Job failed', body: `${t.file_name} failed; you were not charged.`, link: `/tasks/${t.id}` },
          email: ok
            ? { type: 'job_finished', dedupeKey: `task:${t.notice_ref}`, data: (r) => ({ name: r.name, fileName: t.file_name, credits: formatCredits(charged), taskUrl, settingsUrl: url('/account/settings') }) }
            : { type: 'job_failed', dedupeKey: `task:${t.notice_ref}`, data: (r) => ({ name: r.name, fileName: t.file_name, reason: t.error_detail ?? t.error_code ?? 'unknown error', taskUrl, settingsUrl: url('/account/settings') }) },
          webhook: {
            type: ok ? 'task.completed' : 'task.failed',
            eventId: `task:${t.notice_ref}`,
            data: { taskId: t.id, status: t.status, fileName: t.file_name, pages: t.pages, chargedCredits: millicreditsToCredits(charged), error: ok ? null : { code: t.error_code, detail: t.error_detail }, completedAt: t.completed_at },
          },
        });
      });
    }
    return n;
  }

  return {
    /** One sweep of every kind; returns how many notices were written. */
    async runOnce(now: Date = clock()): Promise<{ expiring: number; expired: number; tasks: number }> {
      return { expiring: await expiring(now), expired: await expired(now), tasks: await tasks(now) };
    },
  };
}
