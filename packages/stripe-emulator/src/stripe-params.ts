import { z } from 'zod';
import { invalidRequest, type StripeApiError } from './stripe-errors.ts';
import type { FormHash } from './stripe-form.ts';

/**
 * zod building blocks for Stripe's form parameters, and the mapping of zod issues to Stripe's
 * `invalid_request_error`s (https://docs.stripe.com/error-codes): every schema is strict, so an
 * unknown parameter fails with `parameter_unknown` exactly where real Stripe would fail.
 *
 * Form values arrive as strings. Schemas turn them into numbers/booleans and tag each failure
 * with a code (the zod message) that {@link toStripeError} turns into Stripe's wording.
 */

const INTEGER = /^-?\d+$/;

/** Tags carried in zod messages; {@link toStripeError} renders them. */
const TAG = {
  integer: 'parameter_invalid_integer',
  empty: 'parameter_invalid_empty',
  boolean: 'invalid_boolean',
  url: 'url_invalid',
  email: 'email_invalid',
  currency: 'invalid_currency',
  metadata: 'invalid_metadata',
} as const;

/** A non-empty string of at most `max` characters (Stripe rejects `''` for params that cannot be unset). */
export function str(max = 5000) {
  return z
    .string()
    .min(1, { error: TAG.empty })
    .max(max, { error: `max_length:${max}` });
}

/** A form integer (`"500"`) between `min` and `max`, as a JS number. */
export function int(min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) {
  return z
    .string()
    .min(1, { error: TAG.empty })
    .regex(INTEGER, { error: TAG.integer })
    .transform(Number)
    .pipe(
      z
        .number()
        .min(min, { error: `min:${min}` })
        .max(max, { error: `max:${max}` }),
    );
}

/** A form boolean (`"true"`/`"false"`). */
export function bool() {
  return z.enum(['true', 'false'], { error: TAG.boolean }).transform((v) => v === 'true');
}

/** One of `values` (Stripe: `Invalid mode: must be one of payment, setup, or subscription`). */
export function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values);
}

/** An absolute http(s) URL of at most 5000 characters (`url_invalid`). */
export function url() {
  return str(5000).refine(
    (v) => {
      try {
        const u = new URL(v);
        return u.protocol === 'http:' || u.protocol === 'https:';
      } catch {
        return false;
      }
    },
    { error: TAG.url },
  );
}

/** An email address (`email_invalid`), trimmed. */
export function email() {
  return str(800)
    .refine((v) => /^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(v), { error: TAG.email })
    .transform((v) => v.trim());
}

const CURRENCIES = new Set(Intl.supportedValuesOf('currency').map((c) => c.toLowerCase()));

/** A three-letter ISO currency code, case-insensitive, returned lowercase as Stripe does. */
export function currency() {
  return str(3)
    .transform((v) => v.toLowerCase())
    .refine((v) => CURRENCIES.has(v), { error: TAG.currency });
}

/**
 * Stripe metadata: up to 50 keys, keys ≤ 40 characters without square brackets, values ≤ 500
 * characters (https://docs.stripe.com/api/metadata). `metadata=` (empty) means "no metadata";
 * a key with an empty value is dropped (it would unset that key).
 */
export function metadata() {
  return z.unknown().transform((value, ctx): Record<string, string> => {
    if (value === '') return {};
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      ctx.issues.push({ code: 'custom', message: 'invalid_hash', input: value });
      return z.NEVER;
    }
    const out: Record<string, string> = {};
    const entries = Object.entries(value as FormHash);
    if (entries.length > 50) {
      ctx.issues.push({ code: 'custom', message: `${TAG.metadata}:You can specify up to 50 keys, with key names up to 40 characters long and values up to 500 characters long.`, input: value });
      return z.NEVER;
    }
    for (const [k, v] of entries) {
      if (typeof v !== 'string') {
        ctx.issues.push({ code: 'custom', message: `${TAG.metadata}:Metadata values must be strings (key ${k}).`, input: v });
        return z.NEVER;
      }
      if (k.length > 40) {
        ctx.issues.push({ code: 'custom', message: `${TAG.metadata}:Metadata keys can have up to 40 characters; "${k.slice(0, 50)}" has ${k.length}.`, input: k });
        return z.NEVER;
      }
      if (v.length > 500) {
        ctx.issues.push({ code: 'custom', message: `${TAG.metadata}:Metadata values can have up to 500 characters; the value of "${k}" has ${v.length}.`, input: v });
        return z.NEVER;
      }
      if (v !== '') out[k] = v;
    }
    return out;
  });
}

/**
 * An array in form encoding: either a real array (`a[]=x`) or a hash with index keys
 * (`a[0]=x&a[1]=y`, what stripe-node sends), read in index order.
 */
export function arrayOf<T extends z.ZodType>(item: T, max = 100) {
  return z.preprocess(
    (v) => {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return v;
      const keys = Object.keys(v);
      if (!keys.every((k) => /^\d+$/.test(k))) return v;
      return keys
        .map(Number)
        .sort((a, b) => a - b)
        .map((k) => (v as FormHash)[String(k)]);
    },
    z.array(item).max(max, { error: `max_items:${max}` }),
  );
}

/** `expand[]`: paths of fields to expand (https://docs.stripe.com/api/expanding_objects). */
export const expandParam = arrayOf(str(500), 20).optional();

/** A range filter: `created=1700000000` or `created[gte]=…&created[lt]=…` (unix seconds). */
export const rangeParam = z.union([
  int(0),
  z.strictObject({ gt: int(0).optional(), gte: int(0).optional(), lt: int(0).optional(), lte: int(0).optional() }),
]);
export type RangeParam = z.output<typeof rangeParam>;

/** `limit` (1–100, default 10), `starting_after`, `ending_before` (https://docs.stripe.com/api/pagination). */
export const paginationParams = {
  limit: int(1, 100).optional(),
  starting_after: str(500).optional(),
  ending_before: str(500).optional(),
};

/** Renders a zod path the way Stripe names params: `line_items[0][price_data][currency]`. */
export function paramName(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '';
  const [head, ...rest] = path;
  return String(head) + rest.map((p) => `[${String(p)}]`).join('');
}

function show(input: unknown): string {
  if (typeof input === 'string') return input.length > 60 ? `${input.slice(0, 60)}...` : input;
  try {
    return JSON.stringify(input) ?? String(input);
  } catch {
    return String(input);
  }
}

function listWords(values: readonly unknown[]): string {
  const s = values.map(String);
  if (s.length <= 1) return s.join('');
  return `${s.slice(0, -1).join(', ')}, or ${s[s.length - 1]}`;
}

/** Which issue Stripe would report first: unknown params, then missing ones, then the rest. */
function rank(issue: z.core.$ZodIssue): number {
  if (issue.code === 'unrecognized_keys') return 0;
  if (isMissing(issue)) return 1;
  return 2;
}

function isMissing(issue: z.core.$ZodIssue): boolean {
  return (issue.code === 'invalid_type' || issue.code === 'invalid_value') && issue.input === undefined;
}

/**
 * Turns the most relevant zod issue into Stripe's 400 error: `parameter_unknown`
 * ("Received unknown parameter: x"), `parameter_missing` ("Missing required param: x."),
 * `parameter_invalid_integer`, `parameter_invalid_empty`, `url_invalid`, `email_invalid`, enums
 * ("Invalid x: must be one of a, b, or c"), ranges ("This value must be greater than or equal to 1.").
 */
export function toStripeError(error: z.ZodError): StripeApiError {
  const issue = [...error.issues].sort((a, b) => rank(a) - rank(b))[0];
  if (!issue) return invalidRequest('Invalid request.');
  const param = paramName(issue.path);
  if (issue.code === 'unrecognized_keys') {
    const key = issue.keys[0] ?? '';
    const name = param ? `${param}[${key}]` : key;
    return invalidRequest(`Received unknown parameter: ${name}`, { param: name, code: 'parameter_unknown' });
  }
  if (isMissing(issue)) {
    return invalidRequest(`Missing required param: ${param}.`, { param, code: 'parameter_missing' });
  }
  if (issue.code === 'invalid_type') {
    const kind = issue.expected === 'object' ? 'hash' : issue.expected === 'array' ? 'array' : issue.expected;
    return invalidRequest(`Invalid ${kind}: ${show(issue.input)}`, { param });
  }
  if (issue.code === 'invalid_value') {
    return invalidRequest(`Invalid ${param}: must be one of ${listWords(issue.values)}`, { param });
  }
  const msg = issue.message;
  const input = (issue as { input?: unknown }).input;
  if (msg === TAG.integer) return invalidRequest(`Invalid integer: ${show(input)}`, { param, code: TAG.integer });
  if (msg === TAG.empty) {
    return invalidRequest(
      `You passed an empty string for '${param}'. We assume empty values are an attempt to unset a parameter; however '${param}' cannot be unset. You should remove '${param}' from your request or supply a non-empty value.`,
      { param, code: TAG.empty },
    );
  }
  if (msg === TAG.boolean) return invalidRequest(`Invalid boolean: ${show(input)}`, { param });
  if (msg === TAG.url) return invalidRequest('Not a valid URL', { param, code: TAG.url });
  if (msg === TAG.email) return invalidRequest(`Invalid email address: ${show(input)}`, { param, code: TAG.email });
  if (msg === TAG.currency) {
    return invalidRequest(`Invalid currency: ${show(input)}. Stripe currently supports these currencies: see https://stripe.com/docs/currencies.`, { param });
  }
  if (msg === 'invalid_hash') return invalidRequest(`Invalid hash`, { param });
  if (msg.startsWith(`${TAG.metadata}:`)) return invalidRequest(`Invalid ${param}: ${msg.slice(TAG.metadata.length + 1)}`, { param });
  const [tag, n] = msg.split(':');
  if (tag === 'min') return invalidRequest(`This value must be greater than or equal to ${n}.`, { param });
  if (tag === 'max') return invalidRequest(`This value must be less than or equal to ${n}.`, { param });
  if (tag === 'max_length') return invalidRequest(`Invalid string: ${show(input)}; must be at most ${n} characters`, { param });
  if (tag === 'max_items') return invalidRequest(`Invalid array: ${param} can have at most ${n} items.`, { param });
  return invalidRequest(`Invalid value for ${param}.`, { param });
}

/**
 * Validates parsed form params against `schema`.
 * @throws StripeApiError 400 (see {@link toStripeError}).
 */
export function parseParams<S extends z.ZodType>(schema: S, params: FormHash): z.output<S> {
  const result = schema.safeParse(params, { reportInput: true });
  if (!result.success) throw toStripeError(result.error);
  return result.data;
}
