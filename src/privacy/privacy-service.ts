import type { Readable } from 'node:stream';
import type Stripe from 'stripe';
import type { AuditLog } from '../auth/audit-log.ts';
import type { RequestContext } from '../auth/auth-service.ts';
import type { CurrentUser } from '../auth/auth-types.ts';
import { verifyPassword } from '../auth/passwords.ts';
import type { Config } from '../config.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { inTransaction, isUniqueViolation, type Db } from '../db/database.ts';
import { AppError, ConflictError, NotFoundError, ValidationError } from '../http/errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Logger } from '../logger.ts';
import type { EmailOutbox } from '../notifications/email-outbox.ts';
import { newStorageKey, type FileStorage } from '../tasks/file-storage.ts';
import { buildExportZip } from './account-export.ts';
import { eraseUser, type ErasureStep } from './account-erasure.ts';
import {
  cancelDeletion,
  claimExport,
  dueDeletions,
  findDeletion,
  findExport,
  gatherUserData,
  insertExport,
  listExports,
  mapExport,
  upsertDeletion,
  type AccountExport,
  type DbDeletionRow,
} from './privacy-store.ts';
import { sweepRetention, type RetentionSweep } from './retention.ts';

export type { AccountExport } from './privacy-store.ts';

/** How long an export's download link works (issue 19): 24 hours. */
export const EXPORT_LINK_MS = 24 * 3_600_000;
/** Grace period before a requested erasure is carried out (issue 19): 7 days, cancellable. */
export const ERASURE_GRACE_MS = 7 * 86_400_000;
/** Lease of an export being built; a worker that died leaves it to be retried after this. */
const EXPORT_LEASE_MS = 10 * 60_000;
const MAX_EXPORT_ATTEMPTS = 3;

/** 410: the export's link lapsed (or the account was erased); ask for a new one. */
export class ExportGoneError extends AppError {
  constructor() {
    super(410, 'export_expired', 'Gone', 'This export is no longer available: its 24-hour link lapsed. Ask for a new one.');
  }
}

/** A user's erasure, as the API and the page show it. */
export interface DeletionStatus {
  status: DbDeletionRow['status'];
  requestedAt: Date;
  scheduledFor: Date;
  completedAt: Date | null;
  stepsDone: string[];
}

const deletionJson = (r: DbDeletionRow): DeletionStatus => ({
  status: r.status,
  requestedAt: r.requested_at,
  scheduledFor: r.scheduled_for,
  completedAt: r.completed_at,
  stepsDone: r.steps_done,
});

export interface PrivacyDeps {
  db: Db;
  ledger: Ledger;
  audit: AuditLog;
  storage: FileStorage;
  outbox: EmailOutbox;
  stripe: Stripe;
  config: Readonly<Config>;
  logger: Logger;
  /** The clock of the grace period, link expiry and retention (tests inject one). */
  clock?: () => Date;
  /** Tests: called before each erasure step; throwing there simulates a crash at that step. */
  beforeErasureStep?: (step: ErasureStep, userId: string) => void | Promise<void>;
}

export type PrivacyService = ReturnType<typeof createPrivacyService>;

/**
 * Data export (GDPR Art. 15), erasure (Art. 17) and retention (Art. 5(1)(e)) of Tally accounts.
 * Exports and scheduled erasures are carried out in the background by {@link PrivacyService.start}
 * (the web process's timers, beside the ledger sweeper); tests call the steps directly.
 */
export function createPrivacyService(deps: PrivacyDeps) {
  const { db, audit, storage, outbox, config, logger } = deps;
  const clock = deps.clock ?? (() => new Date());
  const erasureDeps = { db, ledger: deps.ledger, audit, storage, stripe: deps.stripe, logger, clock, beforeStep: deps.beforeErasureStep };
  const timers: NodeJS.Timeout[] = [];
  let running: Promise<unknown> = Promise.resolve();
  let started = false;

  async function buildOne(): Promise<boolean> {
    const row = await claimExport(db, clock(), EXPORT_LEASE_MS);
    if (!row) return false;
    try {
      const generatedAt = clock();
      const [data, entries] = await Promise.all([gatherUserData(db, row.user_id), audit.aboutUser(row.user_id)]);
      const zip = await buildExportZip({ data, audit: entries, generatedAt }, storage);
      const key = newStorageKey();
      await storage.put(key, zip);
      const readyAt = clock();
      const expiresAt = new Date(readyAt.getTime() + EXPORT_LINK_MS);
      await inTransaction(db, async (trx) => {
        const n = await trx('account_exports')
          .where({ id: row.id, status: 'building' })
          .update({ status: 'ready', storage_key: key, size_bytes: zip.length, ready_at: readyAt, expires_at: expiresAt, lease_until: null, last_error: null });
        if (n === 0) return; // erased meanwhile
        const user = (await trx('users').where({ id: row.user_id }).first('email', 'name')) as { email: string; name: string };
        await outbox.enqueue(trx, {
          type: 'account_export_ready',
          to: user.email,
          userId: row.user_id,
          data: { name: user.name, downloadUrl: `${config.appUrl}/account/privacy/exports/${row.id}/download`, expiresAt: viewHelpers.dateTime(expiresAt) },
          dedupeKey: `account_export_ready:${row.id}`,
        });
        await audit.record({ actor: 'system', action: 'privacy.export_ready', target: { type: 'user', id: row.user_id }, details: { exportId: row.id, sizeBytes: zip.length } }, trx);
      });
    } catch (err) {
      logger.error({ err, exportId: row.id }, 'building a data export failed');
      await db('account_exports')
        .where({ id: row.id, status: 'building' })
        .update({ status: row.attempts >= MAX_EXPORT_ATTEMPTS ? 'failed' : 'pending', lease_until: null, last_error: String((err as Error).message).slice(0, 500) });
    }
    return true;
  }

  const service = {
    /**
     * Asks for an export of everything Tally holds about `user`: 202 and a pending export,
     * built in the background and emailed with a link valid 24 hours.
     * @throws ConflictError (409 `export_in_progress`) while another export of theirs is pending or building
     */
    async requestExport(user: CurrentUser, ctx: RequestContext): Promise<AccountExport> {
      try {
        const row = await inTransaction(db, async (trx) => {
          const r = await insertExport(trx, user.id);
          await audit.record({ actor: `user:${user.id}`, actorUserId: user.id, action: 'privacy.export_requested', target: { type: 'user', id: user.id }, ...ctx, details: { exportId: r.id } }, trx);
          return r;
        });
        if (started) void service.buildExports().catch((err: unknown) => logger.error({ err }, 'data export run failed'));
        return mapExport(row);
      } catch (err) {
        if (isUniqueViolation(err, 'account_exports_one_active')) {
          throw new ConflictError('An export of your data is already being prepared. You will get an email when it is ready.', 'export_in_progress');
        }
        throw err;
      }
    },

    /** One of the user's exports. @throws NotFoundError (404) for another user's or an unknown id */
    async getExport(user: CurrentUser, id: string): Promise<AccountExport> {
      const row = /^[0-9a-f-]{36}$/i.test(id) ? await findExport(db, id) : undefined;
      if (!row || row.user_id !== user.id) throw new NotFoundError('export');
      const e = mapExport(row);
      return e.status === 'ready' && e.expiresAt && e.expiresAt <= clock() ? { ...e, status: 'expired' } : e;
    },

    /** The user's latest exports, newest first. */
    async listExports(userId: string): Promise<AccountExport[]> {
      const now = clock();
      return (await listExports(db, userId, 5)).map(mapExport).map((e) => (e.status === 'ready' && e.expiresAt && e.expiresAt <= now ? { ...e, status: 'expired' as const } : e));
    },

    /**
     * Opens a ready export for download (recorded in the audit log).
     * @throws NotFoundError (404) not theirs; ConflictError (409) not ready yet; ExportGoneError (410) link lapsed
     */
    async openDownload(user: CurrentUser, id: string, ctx: RequestContext): Promise<{ stream: Readable; fileName: string; sizeBytes: number }> {
      const e = await service.getExport(user, id);
      if (e.status === 'pending' || e.status === 'building') throw new ConflictError('This export is still being prepared.', 'export_not_ready');
      if (e.status !== 'ready' || !e.storageKey) throw new ExportGoneError();
      const stream = await storage.stream(e.storageKey);
      await db('account_exports').where({ id }).update({ downloaded_at: clock() });
      await audit.record({ actor: `user:${user.id}`, actorUserId: user.id, action: 'privacy.export_downloaded', target: { type: 'user', id: user.id }, ...ctx, details: { exportId: id } });
      return { stream, fileName: `tally-data-${e.readyAt!.toISOString().slice(0, 10)}.zip`, sizeBytes: e.sizeBytes ?? 0 };
    },

    /** Builds every export waiting (the worker's loop). Returns how many it took. */
    async buildExports(): Promise<number> {
      let n = 0;
      while (await buildOne()) n++;
      return n;
    },

    /** The user's erasure, if one was asked for. */
    async deletionStatus(userId: string): Promise<DeletionStatus | null> {
      const r = await findDeletion(db, userId);
      return r ? deletionJson(r) : null;
    },

    /**
     * Schedules the erasure of the user's account in 7 days (cancellable until then); their
     * password confirms it. Asking again while scheduled changes nothing.
     * @throws ValidationError (400 naming `body.password`) when the password is wrong
     */
    async requestDeletion(user: CurrentUser, password: string, ctx: RequestContext): Promise<DeletionStatus> {
      const row = (await db('users').where({ id: user.id }).first('password_hash')) as { password_hash: string } | undefined;
      if (!(await verifyPassword(password, row?.password_hash))) throw new ValidationError([{ field: 'body.password', message: 'is not your password' }], 'The password is not right.');
      const now = clock();
      return inTransaction(db, async (trx) => {
        const d = await upsertDeletion(trx, { user_id: user.id, status: 'scheduled', requested_at: now, scheduled_for: new Date(now.getTime() + ERASURE_GRACE_MS), requested_by: `user:${user.id}`, reason: null });
        if (d.requested_at.getTime() === now.getTime() && d.status === 'scheduled') {
          await audit.record({ actor: `user:${user.id}`, actorUserId: user.id, action: 'privacy.deletion_requested', target: { type: 'user', id: user.id }, ...ctx, details: { scheduledFor: d.scheduled_for.toISOString() } }, trx);
        }
        return deletionJson(d);
      });
    },

    /** Cancels the user's scheduled erasure. @throws NotFoundError (404) when none is scheduled */
    async cancelDeletion(user: CurrentUser, ctx: RequestContext): Promise<void> {
      await inTransaction(db, async (trx) => {
        if (!(await cancelDeletion(trx, user.id, clock()))) throw new NotFoundError('scheduled deletion');
        await audit.record({ actor: `user:${user.id}`, actorUserId: user.id, action: 'privacy.deletion_cancelled', target: { type: 'user', id: user.id }, ...ctx }, trx);
      });
    },

    /**
     * An admin erases a user at once, with a reason (audited). Idempotent: erasing an erased
     * account returns its pseudonym again.
     * @throws NotFoundError (404) unknown user; ConflictError (409) an admin erasing their own account
     */
    async eraseNow(admin: CurrentUser, userId: string, reason: string, ctx: RequestContext): Promise<{ pseudonym: string }> {
      const target = /^[0-9a-f-]{36}$/i.test(userId) ? await db('users').where({ id: userId }).first('id') : undefined;
      if (!target) throw new NotFoundError('user');
      if (userId === admin.id) throw new ConflictError('You cannot erase your own account from here.', 'erase_self');
      await audit.record({ actor: `admin:${admin.id}`, actorUserId: admin.id, action: 'privacy.erasure_started', target: { type: 'user', id: userId }, ...ctx, details: { reason } });
      return { pseudonym: await eraseUser(erasureDeps, userId, `admin:${admin.id}`, reason) };
    },

    /** Carries out erasures whose grace period ended at the clock's now, and resumes interrupted ones. Returns how many finished. */
    async runDueErasures(): Promise<number> {
      let n = 0;
      for (const userId of await dueDeletions(db, clock())) {
        try {
          await eraseUser(erasureDeps, userId, 'system', null);
          n++;
        } catch (err) {
          logger.error({ err, userId }, 'erasure failed; it resumes at the next run');
        }
      }
      return n;
    },

    /** Deletes what is past its retention time (see retention.ts). */
    sweepRetention(): Promise<RetentionSweep> {
      return sweepRetention({ db, storage, audit }, config.retention, clock());
    },

    /** One round of background work: seal the audit chain, build exports, run due erasures, sweep. */
    async tick(): Promise<void> {
      await audit.seal();
      await service.buildExports();
      await service.runDueErasures();
      const swept = await service.sweepRetention();
      if (Object.values(swept).some((v) => v > 0)) logger.info(swept, 'retention sweep');
    },

    /**
     * Starts the background work in this process: exports are looked for every
     * `OUTBOX_POLL_SECONDS` (and at once when asked for here), the rest every `SWEEP_INTERVAL_SECONDS`.
     */
    start(): void {
      if (started) return;
      started = true;
      const chain = (fn: () => Promise<unknown>, what: string) => () => {
        running = running.then(fn).catch((err: unknown) => logger.error({ err }, `${what} failed`));
      };
      timers.push(setInterval(chain(() => service.buildExports(), 'data export run'), config.outboxPollMs));
      timers.push(setInterval(chain(() => service.tick(), 'privacy sweep'), config.sweepIntervalMs));
      for (const t of timers) t.unref();
    },

    /** Stops the timers and waits for the round in progress. */
    async stop(): Promise<void> {
      started = false;
      for (const t of timers.splice(0)) clearInterval(t);
      await running;
    },
  };
  return service;
}
