import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { createTasksPages, createTasksUploadParser } from './tasks-pages.ts';
import { createTasksRouter } from './tasks-router.ts';

/** Upload and the tasks API (`/api/tasks/*`) and the /tasks pages, on the tasks service. */
export function createTasksFeature(services: Services): Feature {
  const { tasks, pricing, config, logger, ledger, db } = services;
  const maxUploadBytes = config.tasks.maxUploadBytes;
  return {
    raw: createTasksUploadParser(maxUploadBytes),
    api: createTasksRouter({
      service: tasks,
      ledger,
      db,
      holdTimeoutMs: config.tasks.holdTimeoutMs,
      topUpUrl: `${config.appUrl}/pricing`,
      maxUploadBytes,
      logger,
      maxEventStreamsPerUser: config.tasks.maxEventStreamsPerUser,
    }),
    pages: createTasksPages({ service: tasks, pricing, maxUploadBytes, spend: services.spend }),
  };
}
