import type { Config } from './config.ts';
import type { DatabaseHandle } from './db/database.ts';
import type { Logger } from './logger.ts';
import { createWorker, createWorkerServices } from './compose.ts';
import { startQueue } from './tasks/tasks-runtime.ts';

/**
 * A worker process (`npm run worker`): the queue and the OCR worker, built by the composition
 * root like the web app's, without HTTP. `stop()` ends the running job at a page boundary (it is
 * retried), then stops pg-boss.
 */
export async function startWorkerProcess(config: Readonly<Config>, database: DatabaseHandle, logger: Logger): Promise<{ stop(): Promise<void> }> {
  const queue = await startQueue({ config, databaseUrl: database.url, logger });
  try {
    const worker = await createWorker(createWorkerServices(config, database.db, { logger }), { queue });
    return {
      async stop() {
        await worker.stop();
        await queue.stop();
      },
    };
  } catch (err) {
    await queue.stop();
    throw err;
  }
}
