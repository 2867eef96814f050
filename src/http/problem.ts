import type { ErrorRequestHandler, Request, RequestHandler, Response } from 'express';
import multer from 'multer';
import { InvalidAmountError } from '../ledger/credits.ts';
import { DomainError } from '../domain-error.ts';
import { domainProblem } from './domain-problems.ts';
import { multipartProblem } from './multipart.ts';
import { AppError, NotFoundError, PayloadTooLargeError, PROBLEM_TYPE_BASE, PROBLEM_TYPE_SLUGS, ValidationError } from './errors.ts';

/**
 * True when the client should get JSON: API routes, and any client that does not explicitly ask
 * for HTML (browsers always send `text/html` in Accept when navigating; scripts rarely do).
 */
export function wantsJson(req: Request): boolean {
  if (req.originalUrl.startsWith('/api/') || req.originalUrl === '/api') return true;
  return !(req.get('accept') ?? '').includes('text/html');
}

/** Writes an RFC 9457 problem+json body for `err`. */
export function sendProblem(res: Response, err: AppError): void {
  for (const [k, v] of Object.entries(err.headers)) res.setHeader(k, v);
  res
    .status(err.status)
    .type('application/problem+json')
    .json({ type: `${PROBLEM_TYPE_BASE}${PROBLEM_TYPE_SLUGS[err.code] ?? err.code}`, title: err.title, status: err.status, detail: err.detail, code: err.code, ...err.extensions });
}

/** Maps domain errors (by code) and errors from libraries (body-parser, multer, csrf-sync, amounts) to our AppErrors. */
function toAppError(err: unknown): AppError | undefined {
  if (err instanceof AppError) return err;
  if (err instanceof DomainError) return domainProblem(err);
  if (err instanceof InvalidAmountError) return new ValidationError([{ field: 'credits', message: err.message }]);
  // Upload routes map their parser's errors with multipartProblem; this is the fallback for any other.
  if (err instanceof multer.MulterError) return multipartProblem(err, { fileField: err.field ?? 'file' });
  const e = err as { status?: number; statusCode?: number; type?: string; code?: string; message?: string };
  const status = e.status ?? e.statusCode;
  if (e.type === 'entity.too.large') return new PayloadTooLargeError('The request body is too large.');
  if (e.type === 'entity.parse.failed') return new ValidationError([{ field: 'body', message: 'is not valid JSON' }]);
  if (e.code === 'EBADCSRFTOKEN' || (status === 403 && /csrf/i.test(e.message ?? ''))) {
    return new AppError(403, 'invalid_csrf_token', 'Forbidden', 'The form expired or did not come from this site. Reload the page and try again.');
  }
  if (status && status >= 400 && status < 500) return new AppError(status, 'bad_request', 'Bad request', e.message ?? 'Bad request');
  return undefined;
}

/** 404 for anything no router answered. */
export const notFoundHandler: RequestHandler = (req, _res, next) => {
  next(new NotFoundError(wantsJson(req) ? 'route' : 'page'));
};

/**
 * The one error handler: problem+json for API clients, an HTML error page for browsers. 5xx are
 * logged with the request id; stack traces and SQL never reach the client.
 */
export const errorHandler: ErrorRequestHandler = (err, req, res, _next) => {
  const appError = toAppError(err) ?? new AppError(500, 'internal_error', 'Internal server error', 'Something went wrong on our side.');
  if (appError.status >= 500) req.log?.error({ err }, 'request failed');
  if (res.headersSent) {
    res.end();
    return;
  }
  if (wantsJson(req)) {
    sendProblem(res, appError);
    return;
  }
  for (const [k, v] of Object.entries(appError.headers)) res.setHeader(k, v);
  res.status(appError.status).render('error', { title: appError.title, problem: appError });
};
