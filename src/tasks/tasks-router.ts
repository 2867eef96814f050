import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import type { Trx } from '../db/database.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { requireCredits } from '../credits/require-credits.ts';
import type { Db } from '../db/database.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { contentDisposition } from '../http/content-disposition.ts';
import { idempotencyKeyOf, validate } from '../http/validate.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Logger } from '../logger.ts';
import { TaskNotFoundError } from './task-problems.ts';
import { uploadDocument, uploadedFile } from './task-upload.ts';
import { taskJson, taskPageJson, uploadJson } from './tasks-json.ts';
import { ResultQuery, TaskId, TasksQuery, UploadFields } from './tasks-schemas.ts';
import { createTaskEventsHub, streamTaskEvents } from './task-events.ts';
import type { DeletedTaskReplay, PreparedUpload, TaskResult, TasksService } from './tasks-service.ts';
import type { TaskStatus } from './tasks-store.ts';
import type { Spender } from '../teams/spend-policy.ts';

declare module 'express-serve-static-core' {
  interface Request {
    /** The upload of `POST /api/tasks`, inspected and priced by `estimateFromUpload`. */
    taskUpload?: PreparedUpload;
  }
}

export interface TasksRouterOptions {
  service: TasksService;
  ledger: Ledger;
  db: Db;
  /** How long an upload's hold lives before the sweeper voids it, ms (`TASK_HOLD_MINUTES`). */
  holdTimeoutMs: number;
  /** Where a 402 sends people to buy credits. */
  topUpUrl: string;
  maxUploadBytes: number;
  logger: Logger;
  /** How often the events stream re-reads the task, ms. Default 500. */
  eventsPollMs?: number;
  /** A stream ends after this long (the browser's EventSource reconnects), ms. Default 10 minutes. */
  eventsMaxMs?: number;
  /** Which wallet an upload spends from, and the policies to enforce (src/teams/wallets.ts). */
  spender?: (req: Request) => Promise<Spender | undefined>;
  /** Open event streams per user (in this process); beyond: 429. Default 10. */
  maxEventStreamsPerUser?: number;
}

/** The task id of the path, or 404 for anything that cannot be one. */
export function taskIdOf(req: Request): string {
  const parsed = TaskId.safeParse(req.params.id);
  if (!parsed.success) throw new TaskNotFoundError();
  return parsed.data;
}

/** `name.pdf` → `name.txt` (the download name of the extracted text). */
export function textFileName(fileName: string): string {
  return `${fileName.replace(/\.[^.]{1,5}$/, '')}.txt`;
}

/** The download name of a result: `scan.pdf` → `scan.json`, or `scan (searchable).pdf`. */
export function resultFileName(fileName: string, format: 'json' | 'pdf'): string {
  const stem = fileName.replace(/\.[^.]{1,5}$/, '');
  return format === 'json' ? `${stem}.json` : `${stem} (searchable).pdf`;
}

/**
 * The tasks API, under `/api` (signed in; someone else's task is a 404):
 * - `POST /tasks` (multipart `file`, optional `Idempotency-Key`) → 202 `{task}`
 * - `GET /tasks?status=&cursor=&limit=` → `{tasks, nextCursor}`
 * - `POST /tasks` also takes an optional `language` field (`eng`, `fra`, `deu`, `spa`)
 * - `GET /tasks/:id` → `{task, pageStats}`; `/result?format=txt|json|pdf` the text, the JSON
 *   result (pages, lines, words, boxes) or the searchable PDF; `/download` the original;
 *   `/events` server-sent events (`task` events until a final status)
 * - `DELETE /tasks/:id` → 204; `POST /tasks/:id/retry` → 202 `{task}`
 * - `POST /tasks/uploads` (multipart `file`, optional `language` as for `POST /tasks`) → 201
 *   `{upload}`: inspected, priced and kept for an hour with its language and wallet (optional
 *   `wallet`: `personal` or `team:<id>`; a team key's pool), nothing held (a bad
 *   language is a 400 naming `body.language`, nothing kept); `POST /tasks/uploads/:id/confirm` → 202 `{task}` (same id as the upload):
 *   holds the estimate and queues the job, without sending the file again. Confirming twice
 *   returns the same task (`Idempotent-Replayed: true`).
 */
export function createTasksRouter(options: TasksRouterOptions): express.Router {
  const { service, logger } = options;
  const pollMs = options.eventsPollMs ?? 500;
  const maxMs = options.eventsMaxMs ?? 10 * 60_000;
  const upload = uploadDocument(options.maxUploadBytes);
  const events = createTaskEventsHub({ loadTasks: (ids) => service.findMany(ids), pollMs, maxStreamsPerUser: options.maxEventStreamsPerUser ?? 10, logger });
  const api = express.Router();

  /** 202 with the task (or, for a replay of a deleted task's key, the first response). */
  const sendTask = (res: Response, result: TaskResult | DeletedTaskReplay) => {
    if (result.replayed) res.setHeader('Idempotent-Replayed', 'true');
    if (!result.task) return void res.status(result.statusCode).json(result.response);
    res.status(202).location(`/api/tasks/${result.task.id}`).json({ task: taskJson(result.task) });
  };

  /** A key used in the last 24 hours answers as it did then: nothing is inspected or held again. */
  const replayIdempotentUpload: RequestHandler = async (req, res, next) => {
    const key = idempotencyKeyOf(req);
    const earlier = key ? await service.replay(req.user!.id, key, uploadedFile(req).bytes) : undefined;
    if (earlier) return sendTask(res, earlier);
    next();
  };

  /** The upload's cost from its content (type and pages), and the task it will become. */
  const estimateFromUpload = async (req: Request): Promise<number> => {
    // the language is checked here, before anything is held: a bad one is a 400 naming the field
    const { language } = validate(UploadFields, req, 'body');
    req.taskUpload = await service.prepare(req.user!.id, { ...uploadedFile(req), language }, idempotencyKeyOf(req));
    return req.taskUpload.millicredits;
  };

  // The hold, the task and its queued job commit in one transaction (or none of them does).
  const holdForUpload = requireCredits(estimateFromUpload, {
    ledger: options.ledger,
    db: options.db,
    settle: 'job',
    timeoutMs: options.holdTimeoutMs,
    topUpUrl: options.topUpUrl,
    holdId: (req) => req.taskUpload!.holdId,
    reason: (req) => req.taskUpload!.reason,
    reference: (req) => ({ type: 'task', id: req.taskUpload!.taskId }),
    spender: options.spender,
  });

  // A hold refused by a spend cap is audited before the 403 goes out.
  const auditRefusedHold: ErrorRequestHandler = (err, req, _res, next) => {
    if (!req.taskUpload) return next(err);
    service.afterHold(req.user!.id, req.taskUpload, err).then(() => next(err), next);
  };

  api.post(
    '/tasks',
    requireAuth,
    upload,
    replayIdempotentUpload,
    holdForUpload,
    async (req: Request, res: Response) => {
      const prepared = req.taskUpload!;
      let result: TaskResult | DeletedTaskReplay;
      try {
        const task = (await req.credits!.handOff((trx: Trx) => service.createHeld(trx, prepared)))!;
        result = { task, replayed: false };
        await service.afterHold(req.user!.id, prepared);
      } catch (err) {
        result = await service.replayAfterRace(err, prepared);
      }
      sendTask(res, result);
    },
    auditRefusedHold,
  );

  api.post('/tasks/uploads', requireAuth, upload, async (req, res) => {
    // the language is checked before anything is stored: a bad one is a 400 naming the field
    const { language } = validate(UploadFields, req, 'body');
    // and so is the wallet (`wallet` field or query, a team key's pool): kept with the upload for its confirmation
    const spender = options.spender ? await options.spender(req) : undefined;
    const staged = await service.stage(req.user!.id, { ...uploadedFile(req), language }, spender);
    res.status(201).location(`/api/tasks/uploads/${staged.upload.id}`).json({ upload: uploadJson(staged) });
  });

  api.post('/tasks/uploads/:id/confirm', requireAuth, async (req, res) => {
    const { task, replayed } = await service.confirm(req.user!.id, taskIdOf(req), req.apiKey);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(202).location(`/api/tasks/${task.id}`).json({ task: taskJson(task) });
  });

  api.get('/tasks', requireAuth, async (req, res) => {
    const q = validate(TasksQuery, req, 'query');
    const page = await service.list(req.user!.id, { status: q.status as TaskStatus | undefined, cursor: q.cursor, limit: q.limit });
    res.json({ tasks: page.items.map(taskJson), nextCursor: page.nextCursor });
  });

  api.get('/tasks/:id', requireAuth, async (req, res) => {
    const id = taskIdOf(req);
    const task = await service.get(req.user!.id, id);
    const pages = await service.pages(req.user!.id, id);
    res.json({ task: taskJson(task), pageStats: pages.map(taskPageJson) });
  });

  api.get('/tasks/:id/result', requireAuth, async (req, res) => {
    const { format, download } = validate(ResultQuery, req, 'query');
    const disposition = download !== undefined ? 'attachment' : 'inline';
    if (format === 'txt') {
      const { task, text } = await service.result(req.user!.id, taskIdOf(req));
      res.setHeader('Content-Disposition', contentDisposition(disposition, textFileName(task.fileName)));
      res.type('text/plain; charset=utf-8').send(text);
      return;
    }
    const { task, stream } = await service.resultFile(req.user!.id, taskIdOf(req), format);
    res.setHeader('Content-Type', format === 'json' ? 'application/json; charset=utf-8' : 'application/pdf');
    res.setHeader('Content-Disposition', contentDisposition(disposition, resultFileName(task.fileName, format)));
    res.setHeader('Cache-Control', 'private, no-store');
    stream.on('error', (err) => {
      logger.error({ err, taskId: task.id }, 'result download failed');
      res.destroy(err);
    });
    res.on('close', () => stream.destroy());
    stream.pipe(res);
  });

  api.get('/tasks/:id/download', requireAuth, async (req, res) => {
    const { task, stream } = await service.original(req.user!.id, taskIdOf(req));
    res.setHeader('Content-Type', task.mimeType);
    res.setHeader('Content-Length', String(task.sizeBytes));
    res.setHeader('Content-Disposition', contentDisposition('attachment', task.fileName));
    res.setHeader('Cache-Control', 'private, no-store');
    stream.on('error', (err) => {
      logger.error({ err, taskId: task.id }, 'download failed');
      res.destroy(err);
    });
    res.on('close', () => stream.destroy());
    stream.pipe(res);
  });

  api.delete('/tasks/:id', requireAuth, async (req, res) => {
    await service.remove(req.user!.id, taskIdOf(req));
    res.status(204).end();
  });

  api.post('/tasks/:id/retry', requireAuth, async (req, res) => {
    const { task, replayed } = await service.retry(req.user!.id, taskIdOf(req), idempotencyKeyOf(req), req.apiKey);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(202).location(`/api/tasks/${task.id}`).json({ task: taskJson(task) });
  });

  api.get('/tasks/:id/events', requireAuth, async (req, res) => {
    const userId = req.user!.id;
    const first = await service.get(userId, taskIdOf(req));
    const release = events.acquire(userId); // 429 beyond the per-user cap
    streamTaskEvents(res, { first, hub: events, release, maxMs });
  });

  return api;
}
