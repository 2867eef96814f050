import { z } from 'zod';
import { schemas } from '../http/validate.ts';
import { isOcrLanguage, OCR_LANGUAGE_CODES } from './ocr-languages.ts';
import { TASK_STATUSES } from './tasks-store.ts';

/** `GET /api/tasks?status=&cursor=&limit=`. */
export const TasksQuery = z
  .object({
    status: z.enum(TASK_STATUSES as [string, ...string[]]).optional(),
    cursor: schemas.cursor.optional(),
    limit: z.coerce.number().int().min(1).max(100).optional(),
  })
  .strict();
export type TasksQuery = z.infer<typeof TasksQuery>;

/** A task id in a path: anything but a UUID cannot name a task (→ 404, not 400). */
export const TaskId = z.uuid();

/** `GET /api/tasks/:id/result?format=txt|json|pdf` (default `txt`; `download` makes it an attachment). */
export const ResultQuery = z
  .object({
    format: z.enum(['txt', 'json', 'pdf']).default('txt'),
    download: z.string().optional(),
  })
  .strict();
export type ResultQuery = z.infer<typeof ResultQuery>;

/**
 * The text fields of an upload (`POST /api/tasks`, `POST /api/credits/estimate`): an optional
 * OCR `language` (`eng`, `fra`, `deu`, `spa`); empty or absent means detect it per page.
 */
export const UploadFields = z
  .object({
    language: z
      .string()
      .refine((value) => value === '' || isOcrLanguage(value), { error: `must be one of ${OCR_LANGUAGE_CODES.join(', ')} (or empty to detect it)` })
      .optional()
      .transform((value) => (value && isOcrLanguage(value) ? value : null)),
  })
  .strip();
export type UploadFields = z.infer<typeof UploadFields>;
