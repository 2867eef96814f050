import type { Request } from 'express';
import { ValidationError } from '../http/errors.ts';

/**
 * Helpers for HTML form posts (pages): the same zod schemas as the API validate the form, minus
 * the CSRF field, and validation errors are shown next to their fields.
 */

/** The posted form without `_csrf` (checked by csrf-sync already), ready for a `.strict()` schema. */
export function formBody(req: Request): Record<string, unknown> {
  const body = (req.body ?? {}) as Record<string, unknown>;
  const { _csrf: _ignored, ...rest } = body;
  return rest;
}

/**
 * `{field: message}` for a {@link ValidationError} (`body.email` → `email`; the first message per
 * field), or undefined for any other error. Unknown fields land under `form`.
 */
export function fieldErrorsOf(err: unknown): Record<string, string> | undefined {
  if (!(err instanceof ValidationError)) return undefined;
  const out: Record<string, string> = {};
  for (const e of err.errors) {
    const [, ...rest] = e.field.split('.');
    const key = rest.length > 0 ? rest.join('.') : 'form';
    const target = e.message === 'is not an accepted field' ? 'form' : key;
    out[target] ??= target === 'form' && key !== 'form' ? `${key} ${e.message}` : e.message;
  }
  return out;
}

/**
 * `next` when it is a path on this site (`/account?x=1`), else `fallback`. Refuses absolute and
 * protocol-relative URLs (`//evil.example`, `/\evil.example`) and control characters, so a
 * login link cannot redirect off-site (OWASP Unvalidated Redirects and Forwards).
 */
export function safeNextPath(next: unknown, fallback = '/account'): string {
  if (typeof next !== 'string' || next.length === 0 || next.length > 2000) return fallback;
  if (!next.startsWith('/') || next.startsWith('//') || next.startsWith('/\\')) return fallback;
  if (/[\u0000-\u001f\u007f\\]/.test(next)) return fallback;
  try {
    const base = 'http://tally.invalid';
    const url = new URL(next, base);
    if (url.origin !== base) return fallback;
    return `${url.pathname}${url.search}${url.hash}`;
  } catch {
    return fallback;
  }
}
