import type { AppDeps, Feature } from '../app.ts';
import { createPricing } from '../credits/pricing-service.ts';
import { createLocalFileStorage, uploadsDir, type FileStorage } from './file-storage.ts';
import type { TaskJob } from './task-queue.ts';
import { createTasksPages, createTasksUploadParser } from './tasks-pages.ts';
import { createTasksRouter } from './tasks-router.ts';
import { createTasksService } from './tasks-service.ts';

/**
 * The services the tasks feature needs at request time: the queue (pg-boss, started by
 * tasks-runtime.ts) and the file storage. Built once per process by `startTasks`; a test app
 * that leaves `enqueue` a no-op gets tasks that stay queued.
 */
export interface TaskServices {
  /** Queues the task's job (`jobId` is the pg-boss job id: sending it twice queues it once). */
  enqueue(job: TaskJob): Promise<void>;
  /** Cancels the job of a deleted task, if it has not finished. */
  cancel?(job: TaskJob): Promise<void>;
  /** Where uploads are kept. Default: local disk under `${DATA_DIR}/uploads`. */
  storage?: FileStorage;
}

/**
 * Upload, the tasks API (`/api/tasks/*`, plus the multipart form of `POST /api/credits/estimate`)
 * and the /tasks pages.
 */
export function createTasksFeature(deps: AppDeps): Feature {
  const { config, db, ledger, logger } = deps;
  const pricing = createPricing(db);
  const service = createTasksService({
    db,
    ledger,
    pricing,
    storage: deps.tasks.storage ?? createLocalFileStorage(uploadsDir(config)),
    queue: deps.tasks,
    config,
    logger,
  });
  const maxUploadBytes = config.tasks.maxUploadBytes;
  return {
    raw: createTasksUploadParser(maxUploadBytes),
    api: createTasksRouter({ service, maxUploadBytes, logger }),
    pages: createTasksPages({ service, pricing, maxUploadBytes }),
  };
}
