import { millicreditsToCredits } from '../ledger/credits.ts';
import type { StagedUpload } from './tasks-service.ts';
import type { Task, TaskPage, TaskStatus } from './tasks-store.ts';

/** A task at the API's edge: credits (not millicredits), ISO 8601 timestamps. */
export interface TaskJson {
  id: string;
  status: TaskStatus;
  fileName: string;
  /** The type read from the content (never the client's Content-Type). */
  mimeType: string;
  sizeBytes: number;
  pages: number;
  /** Pages processed so far by the current attempt. */
  pagesDone: number;
  /** Percent done, 0–100 (100 once completed). */
  progress: number;
  /** What was held when the task was queued, credits. */
  estimatedCredits: number;
  /** What the ledger charged: set when completed (≤ estimate), 0 when failed, null before. */
  chargedCredits: number | null;
  words: number | null;
  /** Tesseract's mean word confidence, 0–100; null without OCR words. */
  meanConfidence: number | null;
  /** Processing wall time of the successful attempt, ms. */
  durationMs: number | null;
  /** Attempts started so far (pg-boss retries a failed attempt up to 3 times). */
  attempts: number;
  /** The OCR language asked for at upload (`eng`, `fra`, `deu`, `spa`), or null: detected per page. */
  language: string | null;
  /** Why the task failed (status `failed` only). */
  error: { code: string; detail: string } | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  /**
   * When the text, JSON result and searchable PDF were deleted under the retention policy
   * (`RETENTION_RESULT_DAYS` after the task finished); null while they are kept. Once set, the
   * result links answer 410 `result-expired`.
   */
  resultDeletedAt: string | null;
  /** When the original upload was deleted under the retention policy (`RETENTION_UPLOAD_DAYS`); then `download` answers 410 `file-expired`. */
  fileDeletedAt: string | null;
  /** `result` is the text; `resultJson` pages/lines/words with boxes; `searchablePdf` null when none was made. */
  links: { self: string; events: string; result: string; resultJson: string; searchablePdf: string | null; download: string };
}

export interface TaskPageJson {
  page: number;
  /** How the page was read, which sets its price: `ocr`, `text-layer`, or `blank` (free). */
  source: 'text-layer' | 'ocr' | 'blank';
  words: number;
  confidence: number | null;
  /** Mean confidence below the threshold: check this page. */
  lowConfidence: boolean;
  /** The language the page was read in (null for a text layer). */
  language: string | null;
  /** Quarter turn applied before recognition, degrees clockwise. */
  rotation: number;
  /** What the page was charged, credits (null before settlement). */
  chargedCredits: number | null;
  durationMs: number;
}

/** Maps a {@link Task} to its JSON shape. */
export function taskJson(t: Task): TaskJson {
  const base = `/api/tasks/${t.id}`;
  return {
    id: t.id,
    status: t.status,
    fileName: t.fileName,
    mimeType: t.mimeType,
    sizeBytes: t.sizeBytes,
    pages: t.pages,
    pagesDone: t.status === 'completed' ? t.pages : t.pagesDone,
    progress: t.status === 'completed' ? 100 : Math.floor((t.pagesDone * 100) / t.pages),
    estimatedCredits: millicreditsToCredits(t.estimatedMillicredits),
    chargedCredits: t.chargedMillicredits === null ? null : millicreditsToCredits(t.chargedMillicredits),
    words: t.words,
    meanConfidence: t.meanConfidence,
    durationMs: t.durationMs,
    attempts: t.attempts,
    language: t.language,
    error: t.status === 'failed' && t.errorCode ? { code: t.errorCode, detail: t.errorDetail ?? '' } : null,
    createdAt: t.createdAt.toISOString(),
    startedAt: t.startedAt?.toISOString() ?? null,
    completedAt: t.completedAt?.toISOString() ?? null,
    resultDeletedAt: t.resultsDeletedAt?.toISOString() ?? null,
    fileDeletedAt: t.fileDeletedAt?.toISOString() ?? null,
    links: {
      self: base,
      events: `${base}/events`,
      result: `${base}/result`,
      resultJson: `${base}/result?format=json`,
      // after the retention sweep the key is gone too, but the link stays: it answers 410, not "never made"
      searchablePdf: t.status === 'completed' && !t.searchablePdfKey && !t.resultsDeletedAt ? null : `${base}/result?format=pdf`,
      download: `${base}/download`,
    },
  };
}

/** Maps a page's statistics to JSON (confidence 0–100, duration ms). */
export function taskPageJson(p: TaskPage): TaskPageJson {
  return {
    page: p.page,
    source: p.source,
    words: p.words,
    confidence: p.confidence,
    lowConfidence: p.lowConfidence ?? false,
    language: p.language ?? null,
    rotation: p.rotation ?? 0,
    chargedCredits: p.chargedMillicredits === null || p.chargedMillicredits === undefined ? null : millicreditsToCredits(p.chargedMillicredits),
    durationMs: p.durationMs,
  };
}

/** An upload kept for confirmation, at the API's edge: what confirming it would hold, credits. */
export function uploadJson(s: StagedUpload) {
  return {
    id: s.upload.id,
    fileName: s.upload.fileName,
    kind: s.upload.kind,
    mimeType: s.upload.mimeType,
    sizeBytes: s.upload.sizeBytes,
    pages: s.upload.pages,
    language: s.upload.language,
    wallet: s.upload.teamId ? `team:${s.upload.teamId}` : 'personal',
    credits: millicreditsToCredits(s.millicredits),
    expiresAt: s.upload.expiresAt.toISOString(),
    links: { confirm: `/api/tasks/uploads/${s.upload.id}/confirm` },
  };
}
