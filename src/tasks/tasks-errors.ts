/**
 * Errors of the OCR task. They carry no HTTP status: the web layer maps them (a rejected upload
 * is a 400), and the worker records them as the reason a job failed.
 */

/** Why a document was refused. Stable values: clients and job records may store them. */
export type DocumentRejectionCode =
  | 'unsupported_type'
  | 'corrupt'
  | 'encrypted'
  | 'too_many_pixels'
  | 'too_many_pages'
  | 'empty';

/**
 * The uploaded bytes cannot be processed: wrong type, unreadable, password-protected, too large
 * in pixels or pages, or empty. `detail` is a sentence meant for the person who uploaded the file.
 */
export class DocumentRejectedError extends Error {
  readonly code: DocumentRejectionCode;
  readonly detail: string;

  constructor(code: DocumentRejectionCode, detail: string, options?: { cause?: unknown }) {
    super(detail, options);
    this.name = new.target.name;
    this.code = code;
    this.detail = detail;
  }
}
