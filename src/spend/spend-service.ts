import type { AuditLog } from '../auth/audit-log.ts';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { ValidationError, type FieldError } from '../http/errors.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { SpendCapExceededError } from '../ledger/ledger-errors.ts';
import type { Logger } from '../logger.ts';
import * as store from './spend-store.ts';

/** Alert thresholds (percent of a cap) when the user has not chosen any (issue 14). */
export const DEFAULT_ALERT_THRESHOLDS = [50, 80, 100] as const;

/** One period cap as the settings show it (millicredits; `limit` = the lower of yours and the hard cap). */
export interface PeriodCap {
  limit: number | null;
  yours: number | null;
  hardCap: number | null;
  spent: number;
  held: number;
  /** limit − spent − held, never below 0; null without a cap. */
  remaining: number | null;
  resetsAt: Date;
}

/** A user's spend controls and where they stand now. */
export interface SpendSettings {
  timeZone: string;
  alertThresholds: number[];
  daily: PeriodCap;
  monthly: PeriodCap;
  perJob: { limit: number | null; yours: number | null; hardCap: number | null };
}

/** A change to the user's own settings; `null` removes a cap, an absent field stays as it is. Millicredits. */
export interface SpendSettingsPatch {
  dailyCap?: number | null;
  monthlyCap?: number | null;
  perJobMax?: number | null;
  timeZone?: string;
  alertThresholds?: number[];
}

/** An admin's hard caps on a user (millicredits; `null` removes one, absent stays). */
export interface HardCapsPatch {
  dailyCap?: number | null;
  monthlyCap?: number | null;
  perJobMax?: number | null;
}

/** A cap alert recorded by the ledger's policy (once per cap, period and threshold). */
export interface SpendCapAlert {
  id: string;
  userId: string;
  cap: 'daily' | 'monthly';
  periodStart: Date;
  threshold: number;
  limit: number;
  used: number;
  createdAt: Date;
  notifiedAt: Date | null;
}

/**
 * Where cap alerts go: the notification pipeline (in-app, email, webhook `spend_cap.reached`).
 * Called inside the transaction that marks the alert delivered, so an outbox write commits with it.
 */
export interface SpendNotifier {
  capReached(trx: Trx, alert: SpendCapAlert): Promise<void>;
}

/** Until the notification pipeline is wired: alerts are logged (and stay in the alert history). */
export function createLoggingSpendNotifier(logger: Logger): SpendNotifier {
  return {
    async capReached(_trx, alert) {
      logger.info({ userId: alert.userId, cap: alert.cap, threshold: alert.threshold }, 'spend_cap.reached');
    },
  };
}

export type SpendControls = ReturnType<typeof createSpendControls>;

const mapAlert = (r: store.DbSpendCapAlertRow): SpendCapAlert => ({
  id: String(r.id),
  userId: r.user_id,
  cap: r.cap,
  periodStart: r.period_start,
  threshold: r.threshold,
  limit: Number(r.limit_amount),
  used: Number(r.used),
  createdAt: r.created_at,
  notifiedAt: r.notified_at,
});

const num = (v: number | string | null | undefined) => (v === null || v === undefined ? null : Number(v));
const lower = (a: number | null, b: number | null) => (a === null ? b : b === null ? a : Math.min(a, b));

/**
 * Spend controls (issue 14): a user's daily and monthly caps (calendar periods in their time zone)
 * and per-job maximum, an admin's hard caps the user can lower but not raise, and cap alerts.
 * The caps are enforced by the ledger where the hold is placed (migration 20261130170000); this
 * service reads and changes the settings and delivers the alerts the ledger recorded.
 */
export function createSpendControls(deps: { db: Db; audit: AuditLog; notifier: SpendNotifier; clock?: () => Date }) {
  const { db, audit, notifier } = deps;
  const clock = deps.clock ?? (() => new Date());

  async function settingsOf(userId: string, row: store.DbSpendLimitsRow | undefined): Promise<SpendSettings> {
    const timeZone = row?.time_zone ?? 'UTC';
    const bounds = await store.periodBounds(db, timeZone, clock());
    const [day, month] = await Promise.all([
      store.spendInPeriod(db, userId, bounds.dayStart, bounds.dayEnd),
      store.spendInPeriod(db, userId, bounds.monthStart, bounds.monthEnd),
    ]);
    const period = (yours: number | null, hardCap: number | null, used: { spent: number; held: number }, resetsAt: Date): PeriodCap => {
      const limit = lower(yours, hardCap);
      return { limit, yours, hardCap, ...used, remaining: limit === null ? null : Math.max(0, limit - used.spent - used.held), resetsAt };
    };
    return {
      timeZone,
      alertThresholds: row?.alert_thresholds ?? [...DEFAULT_ALERT_THRESHOLDS],
      daily: period(num(row?.daily_cap), num(row?.admin_daily_cap), day, bounds.dayEnd),
      monthly: period(num(row?.monthly_cap), num(row?.admin_monthly_cap), month, bounds.monthEnd),
      perJob: { limit: lower(num(row?.per_job_max), num(row?.admin_per_job_max)), yours: num(row?.per_job_max), hardCap: num(row?.admin_per_job_max) },
    };
  }

  return {
    /** The user's caps, hard caps, alert thresholds and what is spent and held in the current periods. */
    async getSettings(userId: string): Promise<SpendSettings> {
      return settingsOf(userId, await store.findLimits(db, userId));
    },

    /**
     * Changes the user's own settings. A cap above the admin's hard cap is refused (400 naming the
     * field: the user may lower a hard cap, never raise it); nothing changes then.
     * @throws {ValidationError}
     */
    async updateSettings(userId: string, patch: SpendSettingsPatch): Promise<SpendSettings> {
      const row = await inTransaction(db, async (trx) => {
        const current = await store.findLimits(trx, userId, true);
        const errors: FieldError[] = [];
        const check = (field: 'dailyCap' | 'monthlyCap' | 'perJobMax', hard: number | null) => {
          const v = patch[field];
          if (v !== undefined && v !== null && hard !== null && v > hard) {
            errors.push({ field: `body.${field}`, message: `must be at most ${millicreditsToCredits(hard)} credits, the limit an administrator set for your account` });
          }
        };
        check('dailyCap', num(current?.admin_daily_cap));
        check('monthlyCap', num(current?.admin_monthly_cap));
        check('perJobMax', num(current?.admin_per_job_max));
        if (errors.length > 0) throw new ValidationError(errors);
        const p: store.UserLimitsPatch = {};
        if (patch.dailyCap !== undefined) p.daily_cap = patch.dailyCap;
        if (patch.monthlyCap !== undefined) p.monthly_cap = patch.monthlyCap;
        if (patch.perJobMax !== undefined) p.per_job_max = patch.perJobMax;
        if (patch.timeZone !== undefined) p.time_zone = patch.timeZone;
        if (patch.alertThresholds !== undefined) p.alert_thresholds = [...new Set(patch.alertThresholds)].sort((a, b) => a - b);
        return store.upsertLimits(trx, userId, p);
      });
      return settingsOf(userId, row);
    },

    /**
     * Sets an admin's hard caps on a user (audited as `spend.hard_caps_set`). A user's own cap above
     * a new hard cap stays stored but the hard cap applies (the lower of the two always wins).
     * Returns null when there is no such user.
     */
    async setHardCaps(
      admin: { id: string },
      userId: string,
      patch: HardCapsPatch,
      ctx: { ip?: string | null; userAgent?: string | null } = {},
    ): Promise<SpendSettings | null> {
      const row = await inTransaction(db, async (trx) => {
        if (!(await store.lockUser(trx, userId))) return null;
        const p: store.AdminLimitsPatch = {};
        if (patch.dailyCap !== undefined) p.admin_daily_cap = patch.dailyCap;
        if (patch.monthlyCap !== undefined) p.admin_monthly_cap = patch.monthlyCap;
        if (patch.perJobMax !== undefined) p.admin_per_job_max = patch.perJobMax;
        const saved = await store.upsertLimits(trx, userId, p);
        const credits = (v: number | null | undefined) => (v === undefined ? undefined : v === null ? null : millicreditsToCredits(v));
        await audit.record(
          {
            actor: `admin:${admin.id}`,
            actorUserId: admin.id,
            action: 'spend.hard_caps_set',
            target: { type: 'user', id: userId },
            ip: ctx.ip ?? null,
            userAgent: ctx.userAgent ?? null,
            details: { dailyCap: credits(patch.dailyCap), monthlyCap: credits(patch.monthlyCap), perJobMax: credits(patch.perJobMax) },
          },
          trx,
        );
        return saved;
      });
      return row ? settingsOf(userId, row) : null;
    },

    /** The user's cap alerts (the alert history), newest first. */
    async listAlerts(userId: string, limit = 20): Promise<SpendCapAlert[]> {
      return (await store.listAlerts(db, userId, limit)).map(mapAlert);
    },

    /**
     * Delivers recorded alerts not yet delivered, each once (rows locked, SKIP LOCKED, so
     * concurrent senders never share one). Returns how many were delivered.
     */
    async deliverAlerts(batch = 100): Promise<number> {
      return inTransaction(db, async (trx) => {
        const rows = await store.claimPendingAlerts(trx, batch);
        for (const r of rows) await notifier.capReached(trx, mapAlert(r));
        await store.markAlertsNotified(
          trx,
          rows.map((r) => String(r.id)),
        );
        return rows.length;
      });
    },

    /** Records in the audit log that a cap refused a job (`spend_cap.job_blocked`). */
    async recordBlocked(userId: string, err: SpendCapExceededError, job: { type: string; name: string; id?: string }): Promise<void> {
      await audit.record({
        actor: `user:${userId}`,
        actorUserId: userId,
        action: 'spend_cap.job_blocked',
        target: { type: 'user', id: userId },
        details: { ...err.data, required: millicreditsToCredits(err.requiredMillicredits), job: job.type, name: job.name, ...(job.id ? { id: job.id } : {}) },
      });
    },
  };
}
