/**
 * Application errors rendered as RFC 9457 problem+json (`{type, title, status, detail, errors?}`).
 * Each domain error is a subclass with a stable `code`; the error handler maps it to a response.
 */

/** One invalid field of a request: where it is (`body.email`, `query.limit`) and why. */
export interface FieldError {
  field: string;
  message: string;
}

export class AppError extends Error {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  /** Extra members of the problem+json body (e.g. `required`, `available`). */
  readonly extensions: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(
    status: number,
    code: string,
    title: string,
    detail: string,
    extensions: Record<string, unknown> = {},
    headers: Record<string, string> = {},
  ) {
    super(detail);
    this.name = new.target.name;
    this.status = status;
    this.code = code;
    this.title = title;
    this.detail = detail;
    this.extensions = extensions;
    this.headers = headers;
  }
}

/** 400: the request does not validate; `errors` lists each bad field. */
export class ValidationError extends AppError {
  constructor(readonly errors: FieldError[], detail = 'The request has invalid fields.') {
    super(400, 'validation_failed', 'Invalid request', detail, { errors });
  }
}

export class BadRequestError extends AppError {
  constructor(detail: string, code = 'bad_request', extensions: Record<string, unknown> = {}) {
    super(400, code, 'Bad request', detail, extensions);
  }
}

export class UnauthorizedError extends AppError {
  constructor(detail = 'Sign in to continue.') {
    super(401, 'unauthorized', 'Unauthorized', detail);
  }
}

export class ForbiddenError extends AppError {
  constructor(detail = 'You are not allowed to do this.', code = 'forbidden') {
    super(403, code, 'Forbidden', detail);
  }
}

/** 404 for anything missing *or not yours*: never reveal that another user's object exists. */
export class NotFoundError extends AppError {
  constructor(what = 'resource') {
    super(404, 'not_found', 'Not found', `No such ${what}.`);
  }
}

export class ConflictError extends AppError {
  constructor(detail: string, code = 'conflict', extensions: Record<string, unknown> = {}) {
    super(409, code, 'Conflict', detail, extensions);
  }
}

export class PayloadTooLargeError extends AppError {
  constructor(detail: string) {
    super(413, 'payload_too_large', 'Payload too large', detail);
  }
}

export class TooManyRequestsError extends AppError {
  constructor(retryAfterSeconds: number, detail = 'Too many attempts. Try again later.') {
    super(429, 'rate_limited', 'Too many requests', detail, { retryAfter: retryAfterSeconds }, {
      'Retry-After': String(Math.max(1, Math.ceil(retryAfterSeconds))),
    });
  }
}

/** Base URL for `type` members; the code is appended (`…/problems/insufficient_credits`). */
export const PROBLEM_TYPE_BASE = 'https://tally.dev/problems/';

/** Problem types spelled differently from their code, as their issue names them (issue 14). */
export const PROBLEM_TYPE_SLUGS: Readonly<Record<string, string>> = {
  spend_cap_exceeded: 'spend-cap-exceeded',
  // a task's results or upload deleted under the retention policy (issue 19)
  result_expired: 'result-expired',
  file_expired: 'file-expired',
};
