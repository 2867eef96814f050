import { z } from 'zod';
import { Credits, DateTime } from '../credits/credits-responses.ts';

/** zod schemas of the tasks JSON the API returns (tasks-json.ts), for the OpenAPI document. */

export const TaskJson = z
  .object({
    id: z.uuid(),
    status: z.string().describe('queued, processing, completed, failed, …'),
    fileName: z.string(),
    mimeType: z.string(),
    sizeBytes: z.number().int(),
    pages: z.number().int(),
    pagesDone: z.number().int(),
    progress: z.number().int().min(0).max(100),
    estimatedCredits: Credits,
    chargedCredits: Credits.nullable(),
    words: z.number().int().nullable(),
    meanConfidence: z.number().nullable(),
    durationMs: z.number().nullable(),
    attempts: z.number().int(),
    language: z.string().nullable(),
    error: z.object({ code: z.string(), detail: z.string() }).nullable(),
    createdAt: DateTime,
    startedAt: DateTime.nullable(),
    completedAt: DateTime.nullable(),
    resultDeletedAt: DateTime.nullable().describe('When the text, JSON result and searchable PDF were deleted under the retention policy (RETENTION_RESULT_DAYS); then the result links answer 410 result-expired. Null while kept.'),
    fileDeletedAt: DateTime.nullable().describe('When the original upload was deleted under the retention policy (RETENTION_UPLOAD_DAYS); then the download link answers 410 file-expired. Null while kept.'),
    links: z.object({ self: z.string(), events: z.string(), result: z.string(), resultJson: z.string(), searchablePdf: z.string().nullable(), download: z.string() }),
  })
  .meta({ id: 'Task' });

export const TaskPageJson = z
  .object({
    page: z.number().int(),
    source: z.enum(['text-layer', 'ocr', 'blank']),
    words: z.number().int(),
    confidence: z.number().nullable(),
    lowConfidence: z.boolean(),
    language: z.string().nullable(),
    rotation: z.number(),
    chargedCredits: Credits.nullable(),
    durationMs: z.number(),
  })
  .meta({ id: 'TaskPage' });

export const UploadJson = z.object({
  id: z.uuid(),
  fileName: z.string(),
  kind: z.string(),
  mimeType: z.string(),
  sizeBytes: z.number().int(),
  pages: z.number().int(),
  language: z.string().nullable(),
  credits: Credits,
  expiresAt: DateTime,
  links: z.object({ confirm: z.string() }),
});

export const TaskResponse = z.object({ task: TaskJson });
export const TaskDetailResponse = z.object({ task: TaskJson, pageStats: z.array(TaskPageJson) });
export const TasksPage = z.object({ tasks: z.array(TaskJson), nextCursor: z.string().nullable() });
export const UploadResponse = z.object({ upload: UploadJson });

/** The `json` result: pages, lines and words with boxes and confidences (README, "OCR"). */
export const OcrResultJson = z
  .object({ fileName: z.string(), pageCount: z.number().int(), words: z.number().int(), meanConfidence: z.number().nullable(), pages: z.array(z.object({ page: z.number().int() }).loose()) })
  .loose();

/** A multipart upload: the document and an optional OCR language. */
export const UploadForm = z.object({
  file: z.string().meta({ format: 'binary' }).describe('PDF, PNG, JPEG, TIFF (multi-page too) or WebP'),
  language: z.string().optional().describe('eng, fra, deu or spa; empty or absent: detected per page'),
});
