import connectPgSimple from 'connect-pg-simple';
import session from 'express-session';
import type pg from 'pg';

/**
 * The marker a session carries once it is in the table. express-session gives a store no other way
 * to tell "save this session I just created" from "save this session I loaded earlier".
 */
const STORED = '_stored';

/** How often one session's expiry is written back when nothing else in it changed, ms. */
export const TOUCH_INTERVAL_MS = 60_000;

type Callback = (err?: unknown) => void;
type StoredSession = session.SessionData & { [STORED]?: true };

/**
 * The session store: connect-pg-simple on the `session` table, with two changes.
 *
 * - **A destroyed session stays destroyed.** connect-pg-simple saves with an upsert, so a request
 *   in flight when its session is destroyed (logout, "sign out other sessions", the purge on
 *   promotion) would write the row back when it saves, and the old cookie would work again.
 *   Here a session loaded from the table is saved with an `UPDATE` only: if its row is gone, it
 *   stays gone. Only a session created in this request (no {@link STORED} mark) is inserted.
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
