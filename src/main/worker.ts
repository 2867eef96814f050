import { loadConfigOrExit, stopOnSignals } from '../lifecycle.ts';
import { migrateLatest, openDatabase, runSeeds } from '../db/database.ts';
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
  const database = await openDatabase(config, logger, { attach: true });
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

  stopOnSignals(async () => {
    await tasks.stop();
    await database.close();
  }, logger);
}

void main();
