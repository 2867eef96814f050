import type { Config } from '../config.ts';
import { createPricing } from '../credits/pricing-service.ts';
import type { Db } from '../db/database.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Logger } from '../logger.ts';
import { createLocalFileStorage, uploadsDir, type FileStorage } from './file-storage.ts';
import { createOcrProcessor } from './ocr-processor.ts';
import { attemptTimeoutSeconds, startTaskQueue, type TaskQueue, type TaskQueueOptions } from './task-queue.ts';
import { startTaskWorker, type OwnedProcessor, type TaskWorker } from './task-worker.ts';
import type { TaskServices } from './tasks-feature.ts';

export interface StartTasksOptions {
  config: Readonly<Config>;
  db: Db;
  ledger: Ledger;
  /** URL of the same database, for pg-boss's own pool. */
  databaseUrl: string;
  logger: Logger;
  /** Run the worker in this process. Default `config.tasks.worker` (`WORKER=on`). */
  worker?: boolean;
  /** Replaces the OCR processor (tests, bench). */
  createProcessor?: () => OwnedProcessor;
  storage?: FileStorage;
  /** Overrides of the queue's retry and polling settings (tests). */
  queue?: Partial<Pick<TaskQueueOptions, 'retryDelaySeconds' | 'pollingIntervalSeconds' | 'maintenanceIntervalSeconds' | 'expireInSeconds'>>;
}

export interface RunningTasks {
  /** What the web app's tasks feature gets (`AppDeps.tasks`). */
  services: TaskServices;
  queue: TaskQueue;
  worker: TaskWorker | undefined;
  /** Stops the worker (its running jobs end at a page boundary and are retried), then pg-boss. */
  stop(): Promise<void>;
}

/**
 * Starts the task pipeline for one process: pg-boss on the app's database and, when `worker` is
 * on, the OCR worker with `config.tasks.workerConcurrency` slots. Used by tally.ts (`npm start`),
 * worker-main.ts (`npm run worker`), the tests and the bench.
 */
export async function startTasks(options: StartTasksOptions): Promise<RunningTasks> {
  const { config, db, ledger, logger } = options;
  const storage = options.storage ?? createLocalFileStorage(uploadsDir(config));
  const queue = await startTaskQueue({
    connectionString: options.databaseUrl,
    logger,
    retryLimit: 3,
    expireInSeconds: options.queue?.expireInSeconds ?? config.tasks.jobLeaseSeconds,
    ...(options.queue?.retryDelaySeconds !== undefined ? { retryDelaySeconds: options.queue.retryDelaySeconds } : {}),
    ...(options.queue?.pollingIntervalSeconds !== undefined ? { pollingIntervalSeconds: options.queue.pollingIntervalSeconds } : {}),
    ...(options.queue?.maintenanceIntervalSeconds !== undefined ? { maintenanceIntervalSeconds: options.queue.maintenanceIntervalSeconds } : {}),
  });
  let worker: TaskWorker | undefined;
  try {
    if (options.worker ?? config.tasks.worker) {
      const limits = { renderDpi: config.tasks.renderDpi, maxPagePixels: config.tasks.maxPagePixels };
      worker = await startTaskWorker({
        db,
        ledger,
        pricing: createPricing(db),
        storage,
        logger,
        queue,
        concurrency: config.tasks.workerConcurrency,
        createProcessor: options.createProcessor ?? (() => createOcrProcessor({ ...limits, logger })),
        sweepIntervalMs: config.sweepIntervalMs,
        leaseSeconds: options.queue?.expireInSeconds ?? config.tasks.jobLeaseSeconds,
        maxAttemptSeconds: attemptTimeoutSeconds(config.tasks.holdTimeoutMs, 3),
      });
    }
  } catch (err) {
    await queue.stop();
    throw err;
  }
  return {
    services: { enqueue: (job) => queue.enqueue(job), cancel: (job) => queue.cancel(job), storage },
    queue,
    worker,
    async stop() {
      await worker?.stop();
      await queue.stop();
    },
  };
}
