import { DomainError } from './domain-error.ts';

/** One page of a list, newest first. */
export interface Page<T> {
  items: T[];
  /** Opaque; pass back to get the next (older) page. Null on the last page. */
  nextCursor: string | null;
}

/** A cursor that was not produced by this API (the web layer answers 400 naming `query.cursor`). */
export class InvalidCursorError extends DomainError {
  constructor() {
    super('invalid_cursor', 'is not a cursor this API produced', { field: 'query.cursor' });
  }
}

/** The keyset position of a row in a list ordered by `(created_at, id)` descending. */
export interface TimeKey {
  createdAt: Date;
  id: string;
}

/** The cursor of `(createdAt, id)`: base64url JSON, opaque to clients. */
export function encodeCursor(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([createdAt.toISOString(), id])).toString('base64url');
}

/** The `(createdAt, id)` of a cursor from {@link encodeCursor}. @throws {InvalidCursorError} */
export function decodeCursor(cursor: string): TimeKey {
  try {
    const [ts, id] = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as [string, string];
    const createdAt = new Date(ts);
    if (typeof id !== 'string' || Number.isNaN(createdAt.getTime())) throw new Error();
    return { createdAt, id };
  } catch {
    throw new InvalidCursorError();
  }
}

/** How cursors of one list are written and read. */
export interface CursorCodec<T, K> {
  encode(last: T): string;
  /** @throws {InvalidCursorError} for a cursor this codec did not write */
  decode(cursor: string): K;
}

/** Cursors over `(createdAt, id)`, the default. */
export const timeKeyCursor: CursorCodec<TimeKey, TimeKey> = {
  encode: (last) => encodeCursor(last.createdAt, last.id),
  decode: decodeCursor,
};

/** Cursors that are a numeric (bigint) id, e.g. the audit log's. */
export const numericIdCursor: CursorCodec<{ id: string }, string> = {
  encode: (last) => last.id,
  decode(cursor) {
    if (!/^\d{1,19}$/.test(cursor)) throw new InvalidCursorError();
    return cursor;
  },
};

/** Cursors that are the last row's uuid (validated at the edge by the route's schema). */
export const uuidCursor: CursorCodec<{ id: string }, string> = {
  encode: (last) => last.id,
  decode(cursor) {
    if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(cursor)) throw new InvalidCursorError();
    return cursor;
  },
};

/**
 * Keyset pagination in one place: decodes `cursor`, fetches `limit + 1` rows after it (the extra
 * row only says whether there is a next page), and returns the page with the next cursor.
 * `limit` is clamped to 1…`max` (default 50 if missing).
 */
export async function paginate<T, K>(
  options: { limit?: number; max: number; default?: number; cursor?: string | null; codec: CursorCodec<NoInfer<T>, K> },
  fetch: (limitPlusOne: number, after: K | undefined) => Promise<T[]>,
): Promise<Page<T>> {
  const limit = Math.min(Math.max(options.limit ?? options.default ?? 50, 1), options.max);
  const after = options.cursor ? options.codec.decode(options.cursor) : undefined;
  const items = await fetch(limit + 1, after);
  const more = items.length > limit;
  if (more) items.pop();
  const last = items.at(-1);
  return { items, nextCursor: more && last !== undefined ? options.codec.encode(last) : null };
}
