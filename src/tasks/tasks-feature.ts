import express from 'express';
import type { AppDeps, Feature } from '../app.ts';

/** The services the tasks feature needs at request time (queue, file storage). */
export interface TaskServices {
  /** Puts a task on the queue for the OCR worker. */
  enqueue(taskId: string): Promise<void>;
}

/** Upload, tasks API (`/api/tasks/*`) and the /tasks pages. */
export function createTasksFeature(_deps: AppDeps): Feature {
  const api = express.Router();
  const pages = express.Router();
  return { api, pages };
}
