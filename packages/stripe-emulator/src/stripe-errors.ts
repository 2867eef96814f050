/**
 * Errors the emulator returns, shaped like Stripe's: HTTP status plus
 * `{error: {type, code?, message, param?, doc_url?, decline_code?}}`
 * (https://docs.stripe.com/api/errors). The SDK maps the status to its error classes:
 * 400/404 → StripeInvalidRequestError (or StripeIdempotencyError when `type` is
 * `idempotency_error`), 401 → StripeAuthenticationError, 402 → StripeCardError, 409 and 5xx are
 * retried by the SDK.
 */

export type StripeErrorType =
  | 'api_error'
  | 'card_error'
  | 'idempotency_error'
  | 'invalid_request_error';

export interface StripeErrorBody {
  type: StripeErrorType;
  message: string;
  code?: string;
  param?: string;
  decline_code?: string;
  doc_url?: string;
}

/** An error with a Stripe-shaped body; thrown anywhere in the emulator, rendered by the router. */
export class StripeApiError extends Error {
  readonly status: number;
  readonly body: StripeErrorBody;
  readonly headers: Record<string, string>;

  constructor(status: number, body: StripeErrorBody, headers: Record<string, string> = {}) {
    super(body.message);
    this.name = 'StripeApiError';
    this.status = status;
    this.body = body.code && !body.doc_url ? { ...body, doc_url: docUrl(body.code) } : body;
    this.headers = headers;
  }

  /** The response body: `{error: {...}}`. */
  toJSON(): { error: StripeErrorBody } {
    return { error: this.body };
  }
}

/** Stripe links each error code to `https://stripe.com/docs/error-codes/<code-with-dashes>`. */
function docUrl(code: string): string {
  return `https://stripe.com/docs/error-codes/${code.replace(/_/g, '-')}`;
}

/** 400 `invalid_request_error` (or another status) with an optional `param` and `code`. */
export function invalidRequest(
  message: string,
  options: { param?: string; code?: string; status?: number } = {},
): StripeApiError {
  const body: StripeErrorBody = { type: 'invalid_request_error', message };
  if (options.code) body.code = options.code;
  if (options.param) body.param = options.param;
  return new StripeApiError(options.status ?? 400, body);
}

/**
 * `resource_missing`: `No such <object>: '<id>'`. 404 when the object is the one in the URL,
 * 400 when it was named by a parameter (e.g. `customer` on a session create), as Stripe does.
 */
export function resourceMissing(objectName: string, id: string, param: string, status: 400 | 404 = 404): StripeApiError {
  return invalidRequest(`No such ${objectName}: '${id}'`, { param, code: 'resource_missing', status });
}

/** 404 for a path the API does not have (`Unrecognized request URL (GET: /v1/foo)`). */
export function unrecognizedUrl(method: string, path: string): StripeApiError {
  return invalidRequest(
    `Unrecognized request URL (${method}: ${path}). Please see https://stripe.com/docs or we can help at https://support.stripe.com/.`,
    { status: 404 },
  );
}

/** 500 `api_error`, for failures inside the emulator; the details go to the log, not the client. */
export function internalError(): StripeApiError {
  return new StripeApiError(500, {
    type: 'api_error',
    message: 'An unknown error occurred while processing your request. Please try again.',
  });
}
