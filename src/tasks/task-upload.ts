import type { Request, RequestHandler } from 'express';
import multer from 'multer';
import { ValidationError } from '../http/errors.ts';
import { multipartProblem } from '../http/multipart.ts';
import type { UploadedFile } from './tasks-service.ts';

/** The multipart field that carries the document. */
export const FILE_FIELD = 'file';

/**
 * Parses a `multipart/form-data` upload into memory: one file in field `file` of at most
 * `maxBytes` (413 problem+json beyond, naming the limit), a few small text fields. Other
 * content types pass through untouched (the handler then reports the missing file).
 */
export function uploadDocument(maxBytes: number, maxFiles = 1): RequestHandler {
  const options = {
    storage: multer.memoryStorage(),
    limits: { fileSize: maxBytes, files: maxFiles, fields: 10, fieldSize: 10_000, parts: maxFiles + 11 },
    defParamCharset: 'utf8', // browsers send UTF-8 file names; busboy's default is latin1
  };
  const parse = maxFiles === 1 ? multer(options).single(FILE_FIELD) : multer(options).array(FILE_FIELD, maxFiles);
  const limits = { fileField: FILE_FIELD, maxFileBytes: maxBytes };
  return (req, res, next) => {
    parse(req, res, (err?: unknown) => {
      if (err instanceof multer.MulterError && err.code === 'LIMIT_FILE_COUNT') {
        return next(new ValidationError([{ field: `body.${FILE_FIELD}`, message: `is not accepted: send at most ${maxFiles} documents at once` }]));
      }
      next(multipartProblem(err, limits));
    });
  };
}

/**
 * The uploaded document. @throws {ValidationError} 400 naming field `file` when there is none, or
 * when its name holds control characters (CR, LF, NUL, …: no client sends them; they would break
 * headers and logs).
 */
export function uploadedFile(req: Request): UploadedFile {
  const file = req.file;
  if (!file || file.size === 0) {
    const message = req.is('multipart/form-data')
      ? 'is required: a PDF, PNG, JPEG, TIFF or WebP document'
      : 'is required: send the document as multipart/form-data in the "file" field';
    throw new ValidationError([{ field: FILE_FIELD, message }]);
  }
  if (/[\u0000-\u001f\u007f]/.test(file.originalname)) {
    throw new ValidationError([{ field: FILE_FIELD, message: 'has a file name with control characters (such as CR, LF or NUL)' }]);
  }
  return { bytes: file.buffer, fileName: file.originalname };
}

/**
 * The uploaded documents of a multi-file upload (`uploadDocument(max, n)`), possibly none; empty
 * parts (a form sent with no file chosen) left out. File names are checked as {@link uploadedFile}'s.
 * @throws {ValidationError} 400 for a file name with control characters
 */
export function uploadedFiles(req: Request): UploadedFile[] {
  const files = Array.isArray(req.files) ? req.files : req.file ? [req.file] : [];
  return files
    .filter((f) => f.size > 0)
    .map((f) => {
      if (/[\u0000-\u001f\u007f]/.test(f.originalname)) {
        throw new ValidationError([{ field: FILE_FIELD, message: 'has a file name with control characters (such as CR, LF or NUL)' }]);
      }
      return { bytes: f.buffer, fileName: f.originalname };
    });
}
