import type { AuditLog } from '../auth/audit-log.ts';
import { pruneAuditRows } from '../auth/audit-store.ts';
import type { Db } from '../db/database.ts';
import { StoredFileMissingError, type FileStorage } from '../tasks/file-storage.ts';

/** How long each kind of data is kept, in days (RETENTION_* in src/config.ts). */
export interface RetentionPolicy {
  uploadDays: number;
  resultDays: number;
  sessionDays: number;
  auditDays: number;
}

/** What one sweep deleted. */
export interface RetentionSweep {
  uploads: number;
  results: number;
  exports: number;
  sessions: number;
  auditEntries: number;
}

const DAY = 86_400_000;

async function removeQuietly(storage: FileStorage, key: string | null | undefined): Promise<void> {
  if (!key) return;
  try {
    await storage.remove(key);
  } catch (err) {
    if (!(err instanceof StoredFileMissingError) && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
}

/**
 * Deletes what is past its time at `now` (GDPR Art. 5(1)(e), storage limitation), in batches of
 * `batch`, and records each kind it deleted in the audit log (`retention.swept`, with the ids of
 * the tasks whose files or results went):
 * - original uploads of finished tasks older than `uploadDays` (the task row stays);
 * - result text, JSON and searchable PDF of tasks completed more than `resultDays` ago;
 * - export ZIPs whose 24-hour link has lapsed;
 * - session rows that expired more than `sessionDays` ago;
 * - audit entries older than `auditDays` (`audit_log_prune`: the chain keeps its anchor).
 * Ledger, payment and task rows are never deleted (bookkeeping duty, GDPR Art. 17(3)(b)).
 */
export async function sweepRetention(deps: { db: Db; storage: FileStorage; audit: AuditLog }, policy: RetentionPolicy, now: Date, batch = 200): Promise<RetentionSweep> {
  const { db, storage, audit } = deps;
  const result: RetentionSweep = { uploads: 0, results: 0, exports: 0, sessions: 0, auditEntries: 0 };

  const uploads = (await db('tasks')
    .whereNull('file_deleted_at')
    .whereIn('status', ['completed', 'failed'])
    .where('created_at', '<', new Date(now.getTime() - policy.uploadDays * DAY))
    .orderBy('created_at')
    .limit(batch)
    .select('id', 'storage_key')) as Array<{ id: string; storage_key: string }>;
  for (const t of uploads) {
    await removeQuietly(storage, t.storage_key);
    await db('tasks').where({ id: t.id }).update({ file_deleted_at: now });
  }
  result.uploads = uploads.length;

  const results = (await db('tasks')
    .whereNull('results_deleted_at')
    .whereNotNull('completed_at')
    .where('completed_at', '<', new Date(now.getTime() - policy.resultDays * DAY))
    .orderBy('completed_at')
    .limit(batch)
    .select('id', 'result_key', 'searchable_pdf_key')) as Array<{ id: string; result_key: string | null; searchable_pdf_key: string | null }>;
  for (const t of results) {
    await removeQuietly(storage, t.result_key);
    await removeQuietly(storage, t.searchable_pdf_key);
    await db('tasks').where({ id: t.id }).update({ result_text: null, result_key: null, searchable_pdf_key: null, results_deleted_at: now });
  }
  result.results = results.length;

  const exports = (await db('account_exports').where({ status: 'ready' }).where('expires_at', '<', now).limit(batch).select('id', 'storage_key')) as Array<{ id: string; storage_key: string | null }>;
  for (const e of exports) {
    await removeQuietly(storage, e.storage_key);
    await db('account_exports').where({ id: e.id }).update({ status: 'expired', storage_key: null });
  }
  result.exports = exports.length;

  result.sessions = await db('session').where('expire', '<', new Date(now.getTime() - policy.sessionDays * DAY)).delete();
  result.auditEntries = await pruneAuditRows(db, new Date(now.getTime() - policy.auditDays * DAY));

  if (result.uploads + result.results + result.exports + result.sessions > 0) {
    await audit.record({
      actor: 'system',
      action: 'retention.swept',
      details: {
        uploads: result.uploads,
        results: result.results,
        exports: result.exports,
        sessions: result.sessions,
        uploadTaskIds: uploads.map((t) => t.id),
        resultTaskIds: results.map((t) => t.id),
        exportIds: exports.map((e) => e.id),
        policyDays: { ...policy },
      },
    });
  }
  return result;
}
