import type { Request } from 'express';
import { z } from 'zod';
import { ValidationError, type FieldError } from './errors.ts';

/** Turns zod issues into field errors (`body.email: Invalid email address`). */
export function fieldErrors(error: z.ZodError, prefix: string): FieldError[] {
  return error.issues.flatMap((issue) => {
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((k) => ({ field: [prefix, ...issue.path, k].join('.'), message: 'is not an accepted field' }));
    }
    return [{ field: [prefix, ...issue.path].join('.'), message: issue.message }];
  });
}

/**
 * Validates `req[part]` against `schema` (use `.strict()` objects so unknown fields are refused)
 * and returns the typed value. Throws {@link ValidationError} (400, every bad field listed).
 */
export function validate<S extends z.ZodType>(schema: S, req: Request, part: 'body' | 'query' | 'params' = 'body'): z.infer<S> {
  const result = schema.safeParse(req[part] ?? {});
  if (!result.success) throw new ValidationError(fieldErrors(result.error, part));
  return result.data;
}

/** Parses `value` against `schema` like {@link validate}, naming fields under `prefix`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, prefix: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (!result.success) throw new ValidationError(fieldErrors(result.error, prefix));
  return result.data;
}

/** Reusable schemas. */
export const schemas = {
  /** Credits as a JSON number or decimal string, ≤ 3 decimals (converted by the caller). */
  credits: z.union([z.number(), z.string().regex(/^-?\d+(\.\d+)?$/)]),
  cursor: z.string().min(1).max(500),
  limit: z.coerce.number().int().min(1).max(500),
  uuid: z.uuid(),
  idempotencyKey: z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces'),
};

/**
 * Reads the optional `Idempotency-Key` header (Stripe's convention: 1–255 printable ASCII chars).
 * Throws {@link ValidationError} when present but malformed.
 */
export function idempotencyKeyOf(req: Request): string | undefined {
  const raw = req.get('Idempotency-Key');
  if (raw === undefined) return undefined;
  const parsed = schemas.idempotencyKey.safeParse(raw);
  if (!parsed.success) throw new ValidationError([{ field: 'header.Idempotency-Key', message: parsed.error.issues[0]!.message }]);
  return parsed.data;
}
