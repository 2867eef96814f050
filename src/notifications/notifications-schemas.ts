import { z } from 'zod';
import { ValidationError } from '../http/errors.ts';
import { decodeCursor as decodeTimeKey, InvalidCursorError, type TimeKey } from '../pagination.ts';
import { schemas } from '../http/validate.ts';
import { EMAIL_TYPES } from './email-messages.ts';

/** zod schemas of the notification routes. Unknown fields are refused. */

const bool = z.enum(['true', 'false']).transform((v) => v === 'true');

/** `GET /api/notifications?unread=&limit=&cursor=` */
export const NotificationsQuery = z.object({ unread: bool.optional(), limit: schemas.limit.optional(), cursor: schemas.cursor.optional() }).strict();

/** `PUT /api/account/notification-settings`: fields left out stay as they are. */
export const SettingsBody = z
  .object({
    receipts: z.boolean({ error: 'must be true or false' }).optional(),
    lowBalance: z.boolean({ error: 'must be true or false' }).optional(),
    expiringCredits: z.boolean({ error: 'must be true or false' }).optional(),
    jobs: z.boolean({ error: 'must be true or false' }).optional(),
    /** Credits (≤ 3 decimals, > 0), or null for no absolute floor. */
    lowBalanceFloorCredits: z.union([z.null(), z.number({ error: 'must be a number of credits or null' })]).optional(),
  })
  .strict();
export type SettingsBody = z.infer<typeof SettingsBody>;

/** `GET /api/admin/emails?to=&type=&limit=&cursor=` */
export const EmailsQuery = z
  .object({
    to: z.string().trim().max(254).optional(),
    type: z.enum(Object.keys(EMAIL_TYPES) as [string, ...string[]], { error: `must be one of ${Object.keys(EMAIL_TYPES).join(', ')}` }).optional().or(z.literal('').transform(() => undefined)),
    limit: schemas.limit.optional(),
    cursor: schemas.cursor.optional(),
  })
  .strict();

export const UuidParams = z.object({ id: z.uuid({ error: 'is not an id this API produced' }) }).strict();

export { encodeCursor } from '../pagination.ts';

/**
 * The `(createdAt, id)` of a cursor from `encodeCursor` (src/pagination.ts), or undefined without
 * one; {@link ValidationError} (400 on `query.cursor`) for anything this API did not produce, so
 * pages can show it like any other bad filter.
 */
export function decodeCursor(cursor: string | undefined): TimeKey | undefined {
  if (!cursor) return undefined;
  try {
    return decodeTimeKey(cursor);
  } catch (err) {
    if (err instanceof InvalidCursorError) throw new ValidationError([{ field: 'query.cursor', message: 'is not a cursor this API produced' }]);
    throw err;
  }
}
