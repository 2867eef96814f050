import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { startTaskQueue, type TaskQueue, type TaskQueueOptions } from './task-queue.ts';

export interface StartQueueOptions {
  config: Readonly<Config>;
  /** URL of the app's database, for pg-boss's own pool. */
  databaseUrl: string;
  logger: Logger;
  /** Overrides of the queue's retry and polling settings (tests). */
  queue?: Partial<Pick<TaskQueueOptions, 'retryDelaySeconds' | 'pollingIntervalSeconds' | 'maintenanceIntervalSeconds' | 'expireInSeconds'>>;
}

/**
 * Starts the job queue for one process: pg-boss on the app's database, with 3 retries, each
 * attempt expiring within the hold's lifetime (`TASK_HOLD_MINUTES`). The web app sends jobs on it;
 * the worker (`createWorker` in src/compose.ts) takes them. Used by tally.ts (`npm start`),
 * src/main/worker.ts (`npm run worker`), the tests and the bench.
 */
export async function startQueue(options: StartQueueOptions): Promise<TaskQueue> {
  const { config, logger } = options;
  return startTaskQueue({
    connectionString: options.databaseUrl,
    logger,
    retryLimit: 3,
    expireInSeconds: options.queue?.expireInSeconds ?? config.tasks.jobLeaseSeconds,
    ...(options.queue?.retryDelaySeconds !== undefined ? { retryDelaySeconds: options.queue.retryDelaySeconds } : {}),
    ...(options.queue?.pollingIntervalSeconds !== undefined ? { pollingIntervalSeconds: options.queue.pollingIntervalSeconds } : {}),
    ...(options.queue?.maintenanceIntervalSeconds !== undefined ? { maintenanceIntervalSeconds: options.queue.maintenanceIntervalSeconds } : {}),
  });
}
