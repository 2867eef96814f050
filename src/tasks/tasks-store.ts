import type { Db, Trx } from '../db/database.ts';
import type { DocumentKind } from './document-inspector.ts';

/** Where a task is in its life. `queued` and `processing` are unfinished; the others are final. */
export type TaskStatus = 'queued' | 'processing' | 'completed' | 'failed';
export const TASK_STATUSES: readonly TaskStatus[] = ['queued', 'processing', 'completed', 'failed'];
export const UNFINISHED: readonly TaskStatus[] = ['queued', 'processing'];

/**
 * An uploaded document as it is stored, the same in a staged upload (task-uploads-store.ts) and in
 * a task: its file name, kind, MIME type, size (bytes), SHA-256, storage key and page count.
 */
export interface StoredDocument {
  fileName: string;
  kind: DocumentKind;
  mimeType: string;
  sizeBytes: number;
  sha256: string;
  storageKey: string;
  pages: number;
}

/** The columns of a {@link StoredDocument} (tables `tasks` and `task_uploads`). */
export interface StoredDocumentRow {
  file_name: string;
  kind: DocumentKind;
  mime_type: string;
  size_bytes: number | string;
  sha256: string;
  storage_key: string;
  pages: number;
}

/** A {@link StoredDocument} from its columns. */
export function storedDocumentOf(r: StoredDocumentRow): StoredDocument {
  return { fileName: r.file_name, kind: r.kind, mimeType: r.mime_type, sizeBytes: Number(r.size_bytes), sha256: r.sha256, storageKey: r.storage_key, pages: r.pages };
}

/** The columns of a {@link StoredDocument}, to insert. */
export function storedDocumentRow(d: StoredDocument): StoredDocumentRow {
  return { file_name: d.fileName, kind: d.kind, mime_type: d.mimeType, size_bytes: d.sizeBytes, sha256: d.sha256, storage_key: d.storageKey, pages: d.pages };
}

/** A task as the domain sees it. Amounts are millicredits, durations milliseconds. */
export interface Task extends StoredDocument {
  id: string;
  userId: string;
  status: TaskStatus;
  pagesDone: number;
  words: number | null;
  meanConfidence: number | null;
  durationMs: number | null;
  estimatedMillicredits: number;
  chargedMillicredits: number | null;
  holdId: string;
  jobId: string;
  attempts: number;
  errorCode: string | null;
  errorDetail: string | null;
  idempotencyKey: string | null;
  /** The OCR language asked for at upload (`eng`, `fra`, `deu`, `spa`); null: detected per page. */
  language: string | null;
  /** Storage key of the JSON result (pages, lines, words), once completed. */
  resultKey: string | null;
  /** Storage key of the searchable PDF, once completed (null when it could not be made). */
  searchablePdfKey: string | null;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  updatedAt: Date;
  /** When the retention sweeper (or an erasure) deleted the original upload; null while it is kept. */
  fileDeletedAt: Date | null;
  /** When the retention sweeper (or an erasure) deleted the text, JSON result and searchable PDF; null while kept. */
  resultsDeletedAt: Date | null;
}

/** Statistics of one processed page. */
export interface TaskPage {
  page: number;
  /** How the page was read, and priced: `blank` pages (no text, no ink) cost nothing. */
  source: 'text-layer' | 'ocr' | 'blank';
  words: number;
  confidence: number | null;
  durationMs: number;
  /** The language the page was read in; null for a text layer. */
  language?: string | null;
  /** Quarter turn applied before recognition, degrees clockwise. */
  rotation?: number;
  /** Mean confidence below the threshold: the user should check this page. */
  lowConfidence?: boolean;
  /** What this page was charged, in millicredits (null before settlement). */
  chargedMillicredits?: number | null;
}

interface DbTaskRow extends StoredDocumentRow {
  id: string;
  user_id: string;
  status: TaskStatus;
  pages_done: number;
  words: number | null;
  mean_confidence: number | null;
  duration_ms: number | null;
  estimated_millicredits: number;
  charged_millicredits: number | null;
  hold_id: string;
  job_id: string;
  attempts: number;
  error_code: string | null;
  error_detail: string | null;
  idempotency_key: string | null;
  language: string | null;
  result_key: string | null;
  searchable_pdf_key: string | null;
  created_at: Date;
  started_at: Date | null;
  completed_at: Date | null;
  updated_at: Date;
  file_deleted_at: Date | null;
  results_deleted_at: Date | null;
}

interface DbTaskPageRow {
  task_id: string;
  page: number;
  source: 'text-layer' | 'ocr' | 'blank';
  words: number;
  confidence: number | null;
  duration_ms: number;
  language: string | null;
  rotation: number;
  low_confidence: boolean;
  charged_millicredits: string | number | null;
}

// Every column but the (possibly large) result text, which only the result endpoint reads.
const COLUMNS: string[] = [
  'id', 'user_id', 'status', 'file_name', 'kind', 'mime_type', 'size_bytes', 'sha256', 'storage_key', 'pages', 'pages_done',
  'words', 'mean_confidence', 'duration_ms', 'estimated_millicredits', 'charged_millicredits', 'hold_id', 'job_id', 'attempts',
  'error_code', 'error_detail', 'idempotency_key', 'language', 'result_key', 'searchable_pdf_key', 'created_at', 'started_at', 'completed_at', 'updated_at',
  'file_deleted_at', 'results_deleted_at',
];

function mapRow(r: DbTaskRow): Task {
  return {
    id: r.id,
    userId: r.user_id,
    status: r.status,
    ...storedDocumentOf(r),
    pagesDone: r.pages_done,
    words: r.words,
    meanConfidence: r.mean_confidence,
    durationMs: r.duration_ms,
    estimatedMillicredits: r.estimated_millicredits,
    chargedMillicredits: r.charged_millicredits,
    holdId: r.hold_id,
    jobId: r.job_id,
    attempts: r.attempts,
    errorCode: r.error_code,
    errorDetail: r.error_detail,
    idempotencyKey: r.idempotency_key,
    language: r.language,
    resultKey: r.result_key,
    searchablePdfKey: r.searchable_pdf_key,
    createdAt: r.created_at,
    startedAt: r.started_at,
    completedAt: r.completed_at,
    updatedAt: r.updated_at,
    fileDeletedAt: r.file_deleted_at,
    resultsDeletedAt: r.results_deleted_at,
  };
}

export interface NewTask extends StoredDocument {
  id: string;
  userId: string;
  estimatedMillicredits: number;
  holdId: string;
  jobId: string;
  idempotencyKey: string | null;
  /** The OCR language asked for; null or absent: detected per page. */
  language?: string | null;
}

/** Inserts a new `queued` task (in the transaction that reserved its hold). Throws 23505 `tasks_user_idempotency_key` on a reused key. */
export async function insertTask(trx: Trx, t: NewTask): Promise<Task> {
  const [row] = await trx('tasks')
    .insert({
      id: t.id,
      user_id: t.userId,
      status: 'queued',
      ...storedDocumentRow(t),
      estimated_millicredits: t.estimatedMillicredits,
      hold_id: t.holdId,
      job_id: t.jobId,
      idempotency_key: t.idempotencyKey,
      language: t.language ?? null,
    })
    .returning(COLUMNS);
  return mapRow(row as DbTaskRow);
}

/** The task with this id, optionally only when `userId` owns it; `lock` takes a row lock (FOR UPDATE). */
export async function findTask(q: Db | Trx, id: string, options: { userId?: string; lock?: boolean } = {}): Promise<Task | undefined> {
  const query = q('tasks').select(COLUMNS).where({ id });
  if (options.userId) query.andWhere({ user_id: options.userId });
  if (options.lock) query.forUpdate();
  const row = await query.first();
  return row ? mapRow(row as DbTaskRow) : undefined;
}

/** The tasks with these ids (one query; absent ids are simply missing from the result). */
export async function findTasks(q: Db | Trx, ids: string[]): Promise<Task[]> {
  if (ids.length === 0) return [];
  const rows = await q('tasks').select(COLUMNS).whereIn('id', ids);
  return (rows as DbTaskRow[]).map(mapRow);
}

/** The user's task created with this Idempotency-Key, or undefined. */
export async function findByIdempotencyKey(q: Db | Trx, userId: string, key: string): Promise<Task | undefined> {
  const row = await q('tasks').select(COLUMNS).where({ user_id: userId, idempotency_key: key }).first();
  return row ? mapRow(row as DbTaskRow) : undefined;
}

/** A user's tasks, newest first; `after` is the last row of the previous page (keyset pagination). */
export async function listTasks(
  q: Db | Trx,
  userId: string,
  filters: { status?: TaskStatus },
  limit: number,
  after?: { createdAt: Date; id: string },
): Promise<Task[]> {
  const query = q('tasks').select(COLUMNS).where({ user_id: userId });
  if (filters.status) query.andWhere({ status: filters.status });
  if (after) query.andWhereRaw('(created_at, id) < (?, ?)', [after.createdAt, after.id]);
  const rows = await query.orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit);
  return (rows as DbTaskRow[]).map(mapRow);
}

/** The extracted text of a task (null until it completed). */
export async function resultText(q: Db | Trx, id: string): Promise<string | null> {
  const row = await q('tasks').select('result_text').where({ id }).first();
  return (row?.result_text as string | null | undefined) ?? null;
}

/** Per-page statistics of a completed task, by page number. */
export async function taskPages(q: Db | Trx, taskId: string): Promise<TaskPage[]> {
  const rows = (await q('task_pages').where({ task_id: taskId }).orderBy('page')) as DbTaskPageRow[];
  return rows.map((r) => ({
    page: r.page,
    source: r.source,
    words: r.words,
    confidence: r.confidence,
    durationMs: r.duration_ms,
    language: r.language,
    rotation: r.rotation,
    lowConfidence: r.low_confidence,
    chargedMillicredits: r.charged_millicredits === null ? null : Number(r.charged_millicredits),
  }));
}

/** Starts an attempt: `processing`, attempts + 1, progress reset. Returns the attempt number. */
export async function startAttempt(trx: Trx, id: string): Promise<number> {
  const [row] = await trx('tasks')
    .where({ id })
    .update({
      status: 'processing',
      attempts: trx.raw('attempts + 1'),
      pages_done: 0,
      started_at: trx.fn.now(),
      error_code: null,
      error_detail: null,
      updated_at: trx.fn.now(),
    })
    .returning(['attempts']);
  return (row as { attempts: number }).attempts;
}

/**
 * Records progress of attempt `attempt`. Returns false when that attempt no longer owns the task
 * (a newer attempt started, the task was settled or deleted): the caller must stop.
 */
export async function recordProgress(q: Db | Trx, id: string, attempt: number, pagesDone: number): Promise<boolean> {
  const n = await q('tasks')
    .where({ id, attempts: attempt, status: 'processing' })
    .update({ pages_done: q.raw('LEAST(?::int, pages)', [pagesDone]), updated_at: q.fn.now() });
  return n === 1;
}

/** An attempt failed and pg-boss will retry it: back to `queued`, keeping the reason for the record. */
export async function markRetrying(q: Db | Trx, id: string, attempt: number, error: { code: string; detail: string }): Promise<void> {
  await q('tasks')
    .where({ id, attempts: attempt, status: 'processing' })
    .update({ status: 'queued', pages_done: 0, error_code: error.code, error_detail: error.detail, updated_at: q.fn.now() });
}

export interface Completion {
  chargedMillicredits: number;
  text: string;
  pages: number;
  words: number;
  meanConfidence: number | null;
  durationMs: number;
  pageStats: TaskPage[];
  /** Storage keys of the JSON result and the searchable PDF, already written. */
  resultKey?: string | null;
  searchablePdfKey?: string | null;
}

/** Marks the task completed with its result (in the transaction that posted its hold). */
export async function markCompleted(trx: Trx, id: string, c: Completion): Promise<void> {
  await trx('tasks')
    .where({ id })
    .update({
      status: 'completed',
      pages_done: trx.raw('LEAST(?::int, pages)', [c.pages]),
      words: c.words,
      mean_confidence: c.meanConfidence,
      duration_ms: c.durationMs,
      result_text: c.text,
      result_key: c.resultKey ?? null,
      searchable_pdf_key: c.searchablePdfKey ?? null,
      charged_millicredits: c.chargedMillicredits,
      error_code: null,
      error_detail: null,
      completed_at: trx.fn.now(),
      updated_at: trx.fn.now(),
    });
  await trx('task_pages').where({ task_id: id }).delete();
  if (c.pageStats.length > 0) {
    await trx('task_pages').insert(
      c.pageStats.map((p) => ({
        task_id: id,
        page: p.page,
        source: p.source,
        words: p.words,
        confidence: p.confidence,
        duration_ms: p.durationMs,
        language: p.language ?? null,
        rotation: p.rotation ?? 0,
        low_confidence: p.lowConfidence ?? false,
        charged_millicredits: p.chargedMillicredits ?? null,
      })),
    );
  }
}

/** Marks the task failed (in the transaction that voided its hold): nothing charged. */
export async function markFailed(trx: Trx, id: string, error: { code: string; detail: string }): Promise<void> {
  await trx('tasks').where({ id }).update({
    status: 'failed',
    charged_millicredits: 0,
    error_code: error.code,
    error_detail: error.detail,
    completed_at: trx.fn.now(),
    updated_at: trx.fn.now(),
  });
}

/** Puts a failed task back in the queue under a new hold and a new job (user retry). */
export async function requeue(trx: Trx, id: string, holdId: string, jobId: string, estimatedMillicredits: number): Promise<Task> {
  const [row] = await trx('tasks')
    .where({ id })
    .update({
      status: 'queued',
      hold_id: holdId,
      job_id: jobId,
      estimated_millicredits: estimatedMillicredits,
      charged_millicredits: null,
      pages_done: 0,
      words: null,
      mean_confidence: null,
      duration_ms: null,
      result_text: null,
      // the new try makes new results: a retention mark of the failed try's (empty) results no longer applies
      results_deleted_at: null,
      error_code: null,
      error_detail: null,
      started_at: null,
      completed_at: null,
      updated_at: trx.fn.now(),
    })
    .returning(COLUMNS);
  await trx('task_pages').where({ task_id: id }).delete();
  return mapRow(row as DbTaskRow);
}

/** Deletes the task row (its `task_pages` go with it); the ledger keeps its transfers and holds. */
export async function deleteTask(trx: Trx, id: string): Promise<void> {
  await trx('tasks').where({ id }).delete();
}

/** Unfinished tasks whose hold is no longer active (voided or expired by the sweeper). */
export async function unfinishedWithoutHold(q: Db | Trx, limit: number): Promise<Array<{ id: string; holdStatus: string | null }>> {
  const rows = (await q('tasks as t')
    .leftJoin('holds as h', 'h.id', 't.hold_id')
    .whereIn('t.status', UNFINISHED as TaskStatus[])
    .andWhere((w) => w.whereNull('h.id').orWhereNot('h.status', 'active'))
    .select('t.id', 'h.status as hold_status')
    .limit(limit)) as Array<{ id: string; hold_status: string | null }>;
  return rows.map((r) => ({ id: r.id, holdStatus: r.hold_status }));
}
