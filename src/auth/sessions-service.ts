import crypto from 'node:crypto';
import type { Db, Trx } from '../db/database.ts';
import { NotFoundError } from '../http/errors.ts';
import type { AuditLog } from './audit-log.ts';
import type { CurrentUser } from './auth-types.ts';
import type { RequestContext } from './auth-service.ts';
import { deleteSession, deleteUserSessions, listUserSessions, type DbSessionRow } from './sessions-store.ts';

/** One of a user's active sessions, as `GET /api/auth/sessions` shows it. */
export interface SessionInfo {
  /** Opaque id (a hash of the session id, which stays secret in its httpOnly cookie). */
  id: string;
  current: boolean;
  userAgent: string | null;
  ip: string | null;
  signedInAt: Date | null;
  lastActiveAt: Date | null;
  expiresAt: Date | null;
}

/** The public id of a session: the first 32 hex digits of SHA-256(sid). */
export function sessionPublicId(sid: string): string {
  return crypto.createHash('sha256').update(sid).digest('hex').slice(0, 32);
}

function sessionInfo(row: DbSessionRow, currentSid: string | undefined): SessionInfo {
  const expires = row.sess.cookie?.expires ? new Date(row.sess.cookie.expires) : null;
  const maxAge = row.sess.cookie?.originalMaxAge;
  return {
    id: sessionPublicId(row.sid),
    current: row.sid === currentSid,
    userAgent: row.sess.userAgent ?? null,
    ip: row.sess.ip ?? null,
    signedInAt: row.sess.authenticatedAt ? new Date(row.sess.authenticatedAt) : null,
    // The cookie is rolling: each request sets expires = now + maxAge.
    lastActiveAt: expires && typeof maxAge === 'number' ? new Date(expires.getTime() - maxAge) : null,
    expiresAt: expires,
  };
}

export type SessionsService = ReturnType<typeof createSessionsService>;

/** A user's own sessions: list them, end one, or end all others. Each change is audited. */
export function createSessionsService(deps: { db: Db; audit: AuditLog }) {
  const { db, audit } = deps;
  return {
    /** The user's active sessions, most recently active first; `currentSid` is marked `current`. */
    async listSessions(userId: string, currentSid: string | undefined): Promise<SessionInfo[]> {
      return (await listUserSessions(db, userId)).map((r) => sessionInfo(r, currentSid));
    },

    /** Ends every session of the user except `currentSid`. Returns how many were ended. */
    async revokeOtherSessions(user: CurrentUser, currentSid: string, ctx: RequestContext): Promise<number> {
      const revoked = await deleteUserSessions(db, user.id, currentSid);
      await audit.record({
        actor: `user:${user.id}`,
        actorUserId: user.id,
        action: 'auth.sessions_revoked',
        target: { type: 'user', id: user.id },
        ...ctx,
        details: { revoked, scope: 'others' },
      });
      return revoked;
    },

    /**
     * Ends every session of the user (e.g. after a password reset), in `trx` when given. Audited.
     * Returns how many were ended.
     */
    async revokeAllSessions(userId: string, ctx: RequestContext, trx?: Trx): Promise<number> {
      const revoked = await deleteUserSessions(trx ?? db, userId);
      await audit.record(
        { actor: `user:${userId}`, actorUserId: userId, action: 'auth.sessions_revoked', target: { type: 'user', id: userId }, ...ctx, details: { revoked, scope: 'all' } },
        trx,
      );
      return revoked;
    },

    /**
     * Ends one of the user's sessions by its public id. Another user's session, or an unknown id →
     * {@link NotFoundError} (404). Returns whether it was the current one (the caller then signs out).
     */
    async revokeSession(user: CurrentUser, publicId: string, currentSid: string | undefined, ctx: RequestContext): Promise<{ current: boolean }> {
      const match = (await listUserSessions(db, user.id)).find((r) => sessionPublicId(r.sid) === publicId);
      if (!match) throw new NotFoundError('session');
      await deleteSession(db, match.sid);
      await audit.record({
        actor: `user:${user.id}`,
        actorUserId: user.id,
        action: 'auth.sessions_revoked',
        target: { type: 'user', id: user.id },
        ...ctx,
        details: { revoked: 1, scope: 'one', session: publicId },
      });
      return { current: match.sid === currentSid };
    },
  };
}
