import connectPgSimple from 'connect-pg-simple';
import session from 'express-session';
import type { Request } from 'express';
import type pg from 'pg';
import type { CurrentUser, Role } from './auth-types.ts';

/**
 * The marker a session carries once it is in the table. express-session gives a store no other way
 * to tell "save this session I just created" from "save this session I loaded earlier".
 */
const STORED = '_stored';

/** How often one session's expiry is written back when nothing else in it changed, ms. */
export const TOUCH_INTERVAL_MS = 60_000;

type Callback = (err?: unknown) => void;
type StoredSession = session.SessionData & { [STORED]?: true };

/** The signed-in user read with the session, in the same query: `user` undefined when that user is gone. */
export interface SessionUser {
  userId: string;
  user: CurrentUser | undefined;
}

/** Where `get` hands the user it read to `createSession` (a symbol: not copied into the session, not saved). */
const USER = Symbol('tally.sessionUser');
const usersByRequest = new WeakMap<Request, SessionUser>();

/**
 * The user the session store read together with this request's session (see
 * {@link createSessionStore}), or undefined when the session has no `userId` or was not loaded
 * from the table. Callers check that `userId` is still the session's before trusting it.
 */
export function sessionUser(req: Request): SessionUser | undefined {
  return usersByRequest.get(req);
}

/**
 * The session row and, when it names a user, that user, in one named statement (planned once per
 * connection). Same expiry condition as connect-pg-simple's own `get`; a `userId` that is not a
 * UUID matches no user instead of failing the cast.
 */
const GET_SESSION_AND_USER = `
  SELECT s.sess, u.id AS user_id, u.email, u.name, u.role
    FROM "session" s
    LEFT JOIN users u
      ON u.id = CASE WHEN s.sess->>'userId' ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$'
                     THEN (s.sess->>'userId')::uuid END
   WHERE s.sid = $1 AND s.expire >= to_timestamp($2)`;

interface SessionAndUserRow {
  sess: unknown;
  user_id: string | null;
  email: string | null;
  name: string | null;
  role: Role | null;
}

/**
 * The session store: connect-pg-simple on the `session` table, with two changes.
 *
 * - **A destroyed session stays destroyed.** connect-pg-simple saves with an upsert, so a request
 *   in flight when its session is destroyed (logout, "sign out other sessions", the purge on
 *   promotion) would write the row back when it saves, and the old cookie would work again.
 *   Here a session loaded from the table is saved with an `UPDATE` only: if its row is gone, it
 *   stays gone. Only a session created in this request (no {@link STORED} mark) is inserted.
 * - **One query for the session and its user.** `get` reads the row joined with the user its
 *   `userId` names; `loadUser` takes the user from there ({@link sessionUser}) instead of a second
 *   round trip.
 * - **Touch at most once a minute.** With a rolling cookie, express-session touches the stored
 *   expiry on every request; here each process writes it at most every
 *   {@link TOUCH_INTERVAL_MS} per session (the stored expiry lags the cookie by at most that).
 *
 * @param pool a pg pool on the app's database
 * @param options.pruneSessionInterval seconds between deletions of expired rows (connect-pg-simple)
 */
export function createSessionStore(pool: pg.Pool, options: { pruneSessionInterval?: number | false } = {}): session.Store {
  const PgStore = connectPgSimple(session);
  const touched = new Map<string, number>();

  const remember = (sid: string) => {
    const now = Date.now();
    if (touched.size > 10_000) for (const [k, at] of touched) if (now - at >= TOUCH_INTERVAL_MS) touched.delete(k);
    touched.set(sid, now);
  };
  const expireSeconds = (sess: StoredSession) => {
    const expires = sess.cookie?.expires;
    return Math.ceil((expires ? new Date(expires).getTime() : Date.now() + 86_400_000) / 1000);
  };

  class RevocableSessionStore extends PgStore {
    override get(sid: string, callback: (err: unknown, session?: session.SessionData | null) => void): void {
      pool.query<SessionAndUserRow>({ name: 'tally_session_get', text: GET_SESSION_AND_USER, values: [sid, Math.ceil(Date.now() / 1000)] }).then(
        ({ rows: [row] }) => {
          if (!row) return callback(null);
          let sess: StoredSession & { [USER]?: SessionUser };
          try {
            sess = (typeof row.sess === 'string' ? JSON.parse(row.sess) : row.sess) as StoredSession;
          } catch {
            return this.destroy(sid, (err) => callback(err ?? null));
          }
          if (typeof sess.userId === 'string') {
            const user = row.user_id ? { id: row.user_id, email: row.email!, name: row.name!, role: row.role! } : undefined;
            sess[USER] = { userId: sess.userId, user };
          }
          callback(null, sess);
        },
        (err: unknown) => callback(err),
      );
    }

    override createSession(req: Request, sess: session.SessionData): session.Session & session.SessionData {
      const read = (sess as { [USER]?: SessionUser })[USER];
      if (read) usersByRequest.set(req, read);
      else usersByRequest.delete(req);
      return super.createSession(req, sess);
    }

    override set(sid: string, sess: StoredSession, callback?: Callback): void {
      remember(sid);
      if (!sess[STORED]) {
        super.set(sid, { ...sess, cookie: sess.cookie, [STORED]: true } as session.SessionData, callback);
        return;
      }
      // Loaded from the table earlier: update the row if it still exists, never re-create it.
      pool.query('UPDATE "session" SET sess = $1, expire = to_timestamp($2) WHERE sid = $3', [JSON.stringify(sess), expireSeconds(sess), sid]).then(
        () => callback?.(),
        (err: unknown) => callback?.(err),
      );
    }

    override touch(sid: string, sess: StoredSession, callback?: () => void): void {
      const last = touched.get(sid);
      if (last !== undefined && Date.now() - last < TOUCH_INTERVAL_MS) {
        callback?.();
        return;
      }
      remember(sid);
      super.touch(sid, sess, callback);
    }

    override destroy(sid: string, callback?: Callback): void {
      touched.delete(sid);
      super.destroy(sid, callback);
    }
  }

  return new RevocableSessionStore({
    pool,
    tableName: 'session',
    createTableIfMissing: false,
    pruneSessionInterval: options.pruneSessionInterval ?? 15 * 60,
  });
}
