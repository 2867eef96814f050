import type { Request } from 'express';
import type { Db, Trx } from '../db/database.ts';
import { numericIdCursor, paginate } from '../pagination.ts';
import type { Logger } from '../logger.ts';
import { auditRowsAboutUser, insertAuditRow, iterateAuditRows, listAuditRows, sealAuditRows, type AuditFilters, type AuditPersonal, type DbAuditRow } from './audit-store.ts';

export type { AuditFilters } from './audit-store.ts';

/**
 * The audit log: every auth event and admin action, append-only (the database refuses UPDATE,
 * DELETE and TRUNCATE) and tamper-evident: entries are sealed into a hash chain
 * (`npm run audit:verify` walks it). Personal data (IP, user agent, and `email` / `name` in
 * `details`) is stored apart from the chained row so an erasure can remove it (GDPR Art. 17)
 * while the chain still verifies. Other features record their own events through
 * {@link createAuditLog}. The database itself records `ledger.transfer` (every transfer) and
 * `job.attempt` / `job.succeeded` / `job.failed` (OCR tasks) by triggers.
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
  /** Position in the hash chain (null until sealed, moments after the write committed). */
  seq: string | null;
  /** sha256 of the entry and the previous hash, hex (null until sealed). */
  hash: string | null;
  prevHash: string | null;
}

/**
 * Keys of `details` that are personal data: kept in the erasable side table, not in the chain.
 * (`name` is not one: features use it for file and job names.)
 */
const PERSONAL_KEYS = ['email'] as const;

function mapRecord(r: DbAuditRow): AuditRecord {
  const personal = r.personal ? (JSON.parse(r.personal) as AuditPersonal) : {};
  const details = { ...(r.details ?? {}) };
  for (const k of PERSONAL_KEYS) if (personal[k] != null) details[k] = personal[k];
  return {
    id: String(r.id),
    createdAt: r.created_at,
    actor: r.actor,
    actorUserId: r.actor_user_id,
    actorEmail: r.actor_email ?? null,
    action: r.action,
    target: r.target_type && r.target_id ? { type: r.target_type, id: r.target_id } : null,
    ip: personal.ip ?? r.ip ?? null,
    userAgent: personal.userAgent ?? r.user_agent ?? null,
    details,
    seq: r.seq == null ? null : String(r.seq),
    hash: r.hash ? r.hash.toString('hex') : null,
    prevHash: r.prev_hash ? r.prev_hash.toString('hex') : null,
  };
}

/** The request's client address and user agent (trimmed to 200 characters), for audit entries. */
export function requestContext(req: Request): { ip: string | null; userAgent: string | null } {
  return { ip: req.ip ?? null, userAgent: req.get('user-agent')?.slice(0, 200) ?? null };
}

export type AuditLog = ReturnType<typeof createAuditLog>;

/**
 * One sealer per database in this process (all audit logs on `db` share it): a call while a seal
 * runs marks it to run once more, so bursts of writes cost one seal, not one each.
 */
const sealers = new WeakMap<Db, { run(): Promise<number>; busy(): boolean; again(): void }>();
function sealerOf(db: Db) {
  let s = sealers.get(db);
  if (!s) {
    let running: Promise<number> | undefined;
    let more = false;
    s = {
      busy: () => running !== undefined,
      again: () => {
        more = true;
      },
      run() {
        if (running) {
          more = true;
          return running;
        }
        running = (async () => {
          let n = 0;
          do {
            more = false;
            n += await sealAuditRows(db);
          } while (more);
          return n;
        })().finally(() => {
          running = undefined;
        });
        return running;
      },
    };
    sealers.set(db, s);
  }
  return s;
}

/** The audit log on `db`. Stateless and cheap: each feature may create its own. */
export function createAuditLog(db: Db, options: { logger?: Logger } = {}) {
  const sealer = sealerOf(db);
  const seal = () =>
    sealer.run().catch((err: unknown) => {
      // the sweeper seals whatever is left; an entry is never lost, only linked later
      options.logger?.warn({ err }, 'audit: sealing failed; the next sweep retries');
      return 0;
    });
  return {
    /**
     * Appends `entry`. Pass `trx` to record it in the same transaction as the change it describes
     * (so it is there exactly when the change committed). Returns the stored record. The entry is
     * linked into the hash chain right after it commits (not inside the caller's transaction, so
     * writers never wait on each other's transactions).
     */
    async record(entry: AuditEntry, trx?: Trx): Promise<AuditRecord> {
      const details = { ...(entry.details ?? {}) };
      const personal: AuditPersonal = { ip: entry.ip ?? null, userAgent: entry.userAgent ?? null };
      for (const k of PERSONAL_KEYS) {
        if (typeof details[k] === 'string') {
          personal[k] = details[k] as string;
          delete details[k];
        }
      }
      const row = await insertAuditRow(trx ?? db, {
        actor: entry.actor,
        actor_user_id: entry.actorUserId ?? null,
        action: entry.action,
        target_type: entry.target?.type ?? null,
        target_id: entry.target?.id ?? null,
        details,
        personal,
      });
      if (trx) void trx.executionPromise.then(seal, () => undefined);
      // without a transaction the entry is committed: link it now, unless a seal is under way
      // (that one runs again and takes it; a login never waits behind a backlog)
      else if (sealer.busy()) sealer.again();
      else await seal();
      return mapRecord(row);
    },

    /** Links every committed, unsealed entry into the chain (the sweeper calls it). Returns how many. */
    seal,

    /** Every entry by or about the user (as actor, target, or `details.userId`), oldest first: their data export. */
    async aboutUser(userId: string): Promise<AuditRecord[]> {
      return (await auditRowsAboutUser(db, userId)).map(mapRecord);
    },

    /** Entries matching `filters`, oldest first, for a streaming export. */
    iterate(filters: AuditFilters = {}): AsyncGenerator<AuditRecord> {
      return (async function* () {
        for await (const r of iterateAuditRows(db, filters)) yield mapRecord(r);
      })();
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
