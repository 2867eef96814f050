import { viewHelpers } from '../credits/view-helpers.ts';
import { AppError, ConflictError, NotFoundError } from '../http/errors.ts';
import type { DocumentRejectedError } from './tasks-errors.ts';

/**
 * 400: the uploaded document was refused (wrong type, corrupt, encrypted, empty, too many pixels).
 * The problem+json body names the field and the reason: `{reason, errors: [{field: 'file', message}]}`.
 */
export class DocumentRejectedProblem extends AppError {
  constructor(readonly rejection: DocumentRejectedError) {
    super(400, `document_${rejection.code}`, 'Document refused', rejection.detail, {
      reason: rejection.code,
      errors: [{ field: 'file', message: rejection.detail }],
    });
  }
}

export class TaskNotFoundError extends NotFoundError {
  constructor() {
    super('task');
  }
}

/** 404: the task exists but this output of it was not made (e.g. no searchable PDF). */
export class TaskOutputMissingError extends AppError {
  constructor(detail: string) {
    super(404, 'not_found', 'Not found', detail);
  }
}

/** 409: the operation needs another status (e.g. the result of a task that has not completed). */
export class TaskStateError extends ConflictError {
  constructor(status: string, detail: string) {
    super(detail, 'task_state', { taskStatus: status });
  }
}

/** 404: the kept upload is not there (someone else's, never made, or expired unconfirmed). */
export class UploadNotFoundError extends AppError {
  constructor() {
    super(404, 'upload_not_found', 'Upload not found', 'This upload is not waiting for a confirmation any more (uploads are kept for an hour). Upload the file again.');
  }
}

/**
 * 410 Gone: the retention sweeper deleted this part of the task (src/privacy/retention.ts; GDPR
 * Art. 5(1)(e), README "Privacy"). `result_expired` (type `…/result-expired`): the text, JSON
 * result and searchable PDF, kept `RETENTION_RESULT_DAYS` after the task finished;
 * `file_expired` (`…/file-expired`): the original upload, kept `RETENTION_UPLOAD_DAYS` after it
 * was uploaded. Extension members: `deletedAt` (ISO 8601) and `retentionDays`. The task itself
 * (status, pages, charge) stays and still answers 200.
 */
export class RetentionDeletedError extends AppError {
  constructor(what: 'result' | 'file', deletedAt: Date, retentionDays: number, then = '') {
    const days = `${retentionDays} day${retentionDays === 1 ? '' : 's'}`;
    const detail =
      what === 'result'
        ? `The results of this task (text, JSON and searchable PDF) were deleted on ${viewHelpers.date(deletedAt)} under the retention policy: results are kept for ${days} after the task finished.`
        : `The original file of this task was deleted on ${viewHelpers.date(deletedAt)} under the retention policy: uploads are kept for ${days}.`;
    super(410, what === 'result' ? 'result_expired' : 'file_expired', what === 'result' ? 'Result expired' : 'File expired', then ? `${detail} ${then}` : detail, {
      deletedAt: deletedAt.toISOString(),
      retentionDays,
    });
  }
}
