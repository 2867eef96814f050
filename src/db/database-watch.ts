import type { Logger } from '../logger.ts';
import type { Db } from './database.ts';
import { keptEmbeddedPort } from './embedded-postgres.ts';

/** Why {@link watchDatabase} gave up on the database. */
export type DatabaseLostReason =
  /** No answer for `lostAfterMs`. */
  | 'unreachable'
  /** The embedded server of DATA_DIR came back on another port than the one this process uses. */
  | 'moved';

export interface DatabaseWatchOptions {
  db: Db;
  logger: Logger;
  /** How long the database may stay unreachable before `onLost`, ms. */
  lostAfterMs: number;
  /** How often to check, ms. Default: a third of `lostAfterMs`, at most 5 s. */
  intervalMs?: number;
  /** For a process attached to the embedded server of a `npm start`: its data dir and the port in use. */
  embedded?: { dataDir: string; port: number };
  /** Called once when the database is lost (the caller usually exits non-zero for its supervisor). */
  onLost: (reason: DatabaseLostReason) => void;
}

/**
 * Watches a long-running process's database connection (`SELECT 1` every few seconds). Knex and
 * pg-boss reconnect on their own when the server comes back on the same address (the embedded
 * server keeps its port across restarts); this catches the cases they cannot recover from: the
 * server gone for longer than `lostAfterMs`, or an embedded server that came back on another port.
 * Then `onLost` is called once, so the process can exit non-zero and be restarted by its
 * supervisor (systemd, Docker, Kubernetes) with a fresh connection.
 *
 * @returns `stop()` ends the watch
 */
export function watchDatabase(options: DatabaseWatchOptions): { stop(): void } {
  const { db, logger, lostAfterMs } = options;
  const intervalMs = options.intervalMs ?? Math.max(200, Math.min(5000, Math.floor(lostAfterMs / 3)));
  let failingSince: number | undefined;
  let done = false;
  let busy = false;
  const lost = (reason: DatabaseLostReason) => {
    if (done) return;
    done = true;
    clearInterval(timer);
    options.onLost(reason);
  };
  const timer = setInterval(() => {
    if (busy || done) return;
    busy = true;
    let timeout: NodeJS.Timeout | undefined;
    const ping = Promise.race([
      db.raw('SELECT 1'),
      new Promise((_, reject) => (timeout = setTimeout(() => reject(new Error('no answer')), Math.max(intervalMs, 1000)))),
    ]);
    ping
      .then(
        () => {
          if (failingSince !== undefined) logger.info('database reachable again');
          failingSince = undefined;
        },
        (err: unknown) => {
          failingSince ??= Date.now();
          logger.warn({ err: (err as Error).message, sinceMs: Date.now() - failingSince }, 'database unreachable');
          const port = options.embedded && keptEmbeddedPort(options.embedded.dataDir);
          if (options.embedded && port !== undefined && port !== options.embedded.port) return lost('moved');
          if (Date.now() - failingSince >= lostAfterMs) lost('unreachable');
        },
      )
      .finally(() => {
        clearTimeout(timeout);
        busy = false;
      });
  }, intervalMs);
  timer.unref();
  return {
    stop() {
      done = true;
      clearInterval(timer);
    },
  };
}
