import multer from 'multer';
import { AppError, PayloadTooLargeError, ValidationError } from './errors.ts';

/** What a multipart route accepts, for the messages of its refusals. */
export interface MultipartLimits {
  /** The one file field. */
  fileField: string;
  /** Largest file, bytes (named in the 413 when given). */
  maxFileBytes?: number;
}

/**
 * The one mapping of multipart parsing failures (multer and the busboy parser under it) to
 * problems: a file over the limit → 413 naming the limit; an unexpected field or too many parts
 * → 400 naming the field; a body that is not well-formed multipart (a malformed or oversized part
 * header, a truncated body) → 400 naming the file field. Never a 500: it is the client's input.
 * Returns undefined for `undefined` (no error).
 */
export function multipartProblem(err: unknown, limits: MultipartLimits): AppError | undefined {
  if (err === undefined || err === null) return undefined;
  if (err instanceof AppError) return err;
  if (err instanceof multer.MulterError) {
    if (err.code === 'LIMIT_FILE_SIZE') {
      if (limits.maxFileBytes === undefined) return new PayloadTooLargeError('The file is larger than the upload limit.');
      const mb = Math.round((limits.maxFileBytes / (1024 * 1024)) * 10) / 10;
      return new PayloadTooLargeError(`The file is larger than the upload limit of ${mb} MB.`);
    }
    const field = err.field ? `body.${err.field}` : 'body';
    const message =
      err.code === 'LIMIT_UNEXPECTED_FILE' ? `is not accepted: send one document in the "${limits.fileField}" field` : err.message;
    return new ValidationError([{ field, message }]);
  }
  // Anything else the parser reports ("Malformed part header", "Unexpected end of form", …).
  const detail = err instanceof Error ? err.message : String(err);
  return new ValidationError([{ field: limits.fileField, message: `could not be read: the multipart/form-data body is malformed (${detail.slice(0, 100)})` }]);
}
