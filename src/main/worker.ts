import { loadConfigOrExit, stopOnSignals } from '../lifecycle.ts';
import { migrateLatest, NoRunningServerError, openDatabase, runSeeds, type DatabaseHandle } from '../db/database.ts';
import { watchDatabase } from '../db/database-watch.ts';
import { createLogger } from '../logger.ts';
import { startWorkerProcess } from '../worker-process.ts';

/**
 * Entry point of `npm run worker`: the OCR worker alone, without the web app. Any number of these
 * may run, on any machine that reaches the database (`DATABASE_URL`; or, on the same machine, the
 * embedded server of a running `npm start` found through `DATA_DIR`) and shares the uploads
 * directory (`DATA_DIR/uploads`). Runs `WORKER_CONCURRENCY` jobs at once. SIGTERM/SIGINT finish
 * the current page, hand unfinished jobs back to the queue and exit.
 */
async function main() {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel).child({ process: 'worker' });
  let database: DatabaseHandle;
  try {
    database = await openDatabase(config, logger, { attach: true, attachOnly: true });
  } catch (err) {
    logger.fatal(err instanceof NoRunningServerError ? err.message : { err }, 'the worker could not reach its database');
    await new Promise((r) => setTimeout(r, 100)); // let the log line flush
    process.exit(1);
  }
  let tasks;
  try {
    await migrateLatest(database.db);
    await runSeeds(database.db);
    tasks = await startWorkerProcess(config, database, logger);
  } catch (err) {
    logger.fatal({ err }, 'the worker could not start');
    await database.close().catch(() => undefined);
    await new Promise((r) => setTimeout(r, 100)); // let the log line flush
    process.exit(1);
  }
  logger.info({ database: database.mode, concurrency: config.tasks.workerConcurrency }, 'Tally worker running');
  // Lost database: exit non-zero so the supervisor restarts the worker with a fresh connection
  // (its running job's lease lapses and another attempt picks it up).
  const watch = watchDatabase({
    db: database.db,
    logger,
    lostAfterMs: config.tasks.dbLostExitMs,
    ...(database.mode === 'attached' && database.embeddedPort ? { embedded: { dataDir: config.dataDir, port: database.embeddedPort } } : {}),
    onLost: (reason) => {
      logger.fatal({ reason }, 'the worker lost its database; exiting for the supervisor to restart it');
      setTimeout(() => process.exit(1), 100);
    },
  });

  stopOnSignals(async () => {
    watch.stop();
    await tasks.stop();
    await database.close();
  }, logger);
}

void main();
