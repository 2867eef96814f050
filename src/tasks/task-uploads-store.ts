import type { Db, Trx } from '../db/database.ts';
import { storedDocumentOf, storedDocumentRow, type StoredDocument, type StoredDocumentRow } from './tasks-store.ts';

/** A document uploaded and priced, kept until it is confirmed as a task or expires. */
export interface TaskUpload extends StoredDocument {
  id: string;
  userId: string;
  /** The OCR language chosen at upload (`eng`, `fra`, `deu`, `spa`); null: detected per page. */
  language: string | null;
  /** The team whose pool the job spends from (issue 16); null: the uploader's own credits. */
  teamId: string | null;
  /** The API key that staged the upload; null: a browser session. */
  apiKeyId: string | null;
  createdAt: Date;
  expiresAt: Date;
}

interface DbTaskUploadRow extends StoredDocumentRow {
  id: string;
  user_id: string;
  language: string | null;
  team_id: string | null;
  api_key_id: string | null;
  created_at: Date;
  expires_at: Date;
}

const mapRow = (r: DbTaskUploadRow): TaskUpload => ({
  id: r.id,
  userId: r.user_id,
  ...storedDocumentOf(r),
  language: r.language,
  teamId: r.team_id,
  apiKeyId: r.api_key_id,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
});

export type NewTaskUpload = Omit<TaskUpload, 'createdAt'>;

export async function insertUpload(q: Db | Trx, u: NewTaskUpload): Promise<TaskUpload> {
  const [row] = await q<DbTaskUploadRow>('task_uploads')
    .insert({
      id: u.id,
      user_id: u.userId,
      ...storedDocumentRow(u),
      language: u.language,
      team_id: u.teamId,
      api_key_id: u.apiKeyId,
      expires_at: u.expiresAt,
    })
    .returning('*');
  return mapRow(row!);
}

/** The user's unexpired uploads among `ids`, oldest first; `lock` takes row locks (FOR UPDATE). */
export async function findUploads(q: Db | Trx, userId: string, ids: readonly string[], options: { lock?: boolean } = {}): Promise<TaskUpload[]> {
  if (ids.length === 0) return [];
  const query = q<DbTaskUploadRow>('task_uploads')
    .where({ user_id: userId })
    .whereIn('id', ids)
    .where('expires_at', '>', q.fn.now())
    .orderBy([{ column: 'created_at' }, { column: 'id' }]);
  if (options.lock) query.forUpdate();
  return (await query).map(mapRow);
}

export async function deleteUpload(q: Db | Trx, id: string): Promise<void> {
  await q('task_uploads').where({ id }).delete();
}

/** Deletes up to `limit` expired uploads (any user) and returns their storage keys, for removal. */
export async function deleteExpiredUploads(q: Db | Trx, limit: number): Promise<string[]> {
  const rows = await q<DbTaskUploadRow>('task_uploads')
    .whereIn('id', q('task_uploads').select('id').where('expires_at', '<=', q.fn.now()).limit(limit).forUpdate().skipLocked())
    .delete()
    .returning('storage_key');
  return rows.map((r) => (r as unknown as { storage_key: string }).storage_key);
}
