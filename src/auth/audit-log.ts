import type { Request } from 'express';
import type { Db, Trx } from '../db/database.ts';
import { numericIdCursor, paginate } from '../pagination.ts';
import { insertAuditRow, listAuditRows, type AuditFilters, type DbAuditRow } from './audit-store.ts';

/**
 * The audit log: every auth event and admin action, append-only (the database refuses UPDATE,
 * DELETE and TRUNCATE). Other features record their own events through {@link createAuditLog}.
 *
 * Action names are `<area>.<verb>` in snake case: `auth.signup`, `auth.login`, `auth.login_failed`,
 * `auth.logout`, `auth.sessions_revoked`, `admin.credits_granted`, `admin.credits_adjusted`,
 * `admin.user_created`, `admin.user_promoted`.
 */

/** One event to record. Never put passwords, tokens or card data in `details`. */
export interface AuditEntry {
  /** Who did it: `user:<id>`, `admin:<id>`, `system`, `anonymous`, `stripe` (the ledger's convention). */
  actor: string;
  /** The acting user's id, when a user did it (filters and joins use this). */
  actorUserId?: string | null;
  action: string;
  /** What it was done to, e.g. `{type: 'user', id}`. */
  target?: { type: string; id: string } | null;
  ip?: string | null;
  userAgent?: string | null;
  details?: Record<string, unknown>;
}

/** A recorded entry, as the admin API returns it. */
export interface AuditRecord {
  id: string;
  createdAt: Date;
  actor: string;
  actorUserId: string | null;
  /** The acting user's email now (joined), if any. */
  actorEmail: string | null;
  action: string;
  target: { type: string; id: string } | null;
  ip: string | null;
  userAgent: string | null;
  details: Record<string, unknown>;
}

function mapRecord(r: DbAuditRow): AuditRecord {
  return {
    id: String(r.id),
    createdAt: r.created_at,
    actor: r.actor,
    actorUserId: r.actor_user_id,
    actorEmail: r.actor_email ?? null,
    action: r.action,
    target: r.target_type && r.target_id ? { type: r.target_type, id: r.target_id } : null,
    ip: r.ip,
    userAgent: r.user_agent,
    details: r.details ?? {},
  };
}

/** The request's client address and user agent (trimmed to 200 characters), for audit entries. */
export function requestContext(req: Request): { ip: string | null; userAgent: string | null } {
  return { ip: req.ip ?? null, userAgent: req.get('user-agent')?.slice(0, 200) ?? null };
}

export type AuditLog = ReturnType<typeof createAuditLog>;

/** The audit log on `db`. Stateless and cheap: each feature may create its own. */
export function createAuditLog(db: Db) {
  return {
    /**
     * Appends `entry`. Pass `trx` to record it in the same transaction as the change it describes
     * (so it is there exactly when the change committed). Returns the stored record.
     */
    async record(entry: AuditEntry, trx?: Trx): Promise<AuditRecord> {
      const row = await insertAuditRow(trx ?? db, {
        actor: entry.actor,
        actor_user_id: entry.actorUserId ?? null,
        action: entry.action,
        target_type: entry.target?.type ?? null,
        target_id: entry.target?.id ?? null,
        ip: entry.ip ?? null,
        user_agent: entry.userAgent ?? null,
        details: entry.details ?? {},
      });
      return mapRecord(row);
    },

    /**
     * Entries newest first. `limit` 1–500 (default 50); `cursor` is the previous page's
     * `nextCursor`. Throws InvalidCursorError (400) for a cursor this API did not produce.
     */
    async list(filters: AuditFilters = {}, page: { limit?: number; cursor?: string | null } = {}) {
      return paginate({ limit: page.limit, max: 500, cursor: page.cursor, codec: numericIdCursor }, async (n, beforeId) =>
        (await listAuditRows(db, filters, n, beforeId)).map(mapRecord),
      );
    },
  };
}
