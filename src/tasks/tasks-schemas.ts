import { z } from 'zod';
import { schemas } from '../http/validate.ts';
import { TASK_STATUSES } from './tasks-store.ts';

/** `GET /api/tasks?status=&cursor=&limit=`. */
export const TasksQuery = z
  .object({
    status: z.enum(TASK_STATUSES as [string, ...string[]]).optional(),
    cursor: schemas.cursor.optional(),
    limit: z.coerce.number().int().min(1).max(100).optional(),
  })
  .strict();
export type TasksQuery = z.infer<typeof TasksQuery>;

/** A task id in a path: anything but a UUID cannot name a task (→ 404, not 400). */
export const TaskId = z.uuid();
