import express, { type ErrorRequestHandler, type Request, type RequestHandler, type Response } from 'express';
import type { Trx } from '../db/database.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { requireCredits } from '../credits/require-credits.ts';
import type { Db } from '../db/database.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { contentDisposition } from '../http/content-disposition.ts';
import { idempotencyKeyOf, validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import { z } from 'zod';
import * as R from './tasks-responses.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Logger } from '../logger.ts';
import { TaskNotFoundError } from './task-problems.ts';
import { uploadDocument, uploadedFile } from './task-upload.ts';
import { taskJson, taskPageJson, uploadJson } from './tasks-json.ts';
import { ResultQuery, TaskId, TasksQuery, UploadFields } from './tasks-schemas.ts';

const TaskParams = z.object({ id: z.uuid() });
const OCTET = z.string().meta({ format: 'binary' });
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
 *   `/events` server-sent events (`task` events until a final status). Once the retention
 *   sweeper deleted them, `/result` answers 410 `result-expired` and `/download` 410
 *   `file-expired` (the task itself still answers, with `resultDeletedAt` / `fileDeletedAt`)
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

  apiRoute(
    api,
    {
      method: 'post',
      path: '/tasks',
      summary: 'Upload a document for OCR: holds the estimate and queues the job (402 when credits are short, 403 over a spend cap)',
      auth: 'user',
      request: { multipart: R.UploadForm, idempotencyKey: true },
      responses: { 202: R.TaskResponse },
    },
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

  apiRoute(api, { method: 'post', path: '/tasks/uploads', summary: 'Upload a document to see its price first: inspected, priced and kept for an hour; nothing held', auth: 'user', request: { multipart: R.UploadForm }, responses: { 201: R.UploadResponse } }, requireAuth, upload, async (req, res) => {
    // the language is checked before anything is stored: a bad one is a 400 naming the field
    const { language } = validate(UploadFields, req, 'body');
    // and so is the wallet (`wallet` field or query, a team key's pool): kept with the upload for its confirmation
    const spender = options.spender ? await options.spender(req) : undefined;
    const staged = await service.stage(req.user!.id, { ...uploadedFile(req), language }, spender);
    res.status(201).location(`/api/tasks/uploads/${staged.upload.id}`).json({ upload: uploadJson(staged) });
  });

  apiRoute(api, { method: 'post', path: '/tasks/uploads/:id/confirm', summary: 'Confirm an upload: holds the estimate and queues the job; twice gives the same task', auth: 'user', request: { params: TaskParams }, responses: { 202: R.TaskResponse } }, requireAuth, async (req, res) => {
    const { task, replayed } = await service.confirm(req.user!.id, taskIdOf(req), req.apiKey);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(202).location(`/api/tasks/${task.id}`).json({ task: taskJson(task) });
  });

  apiRoute(api, { method: 'get', path: '/tasks', summary: 'Your tasks, newest first', auth: 'user', request: { query: TasksQuery }, responses: { 200: R.TasksPage } }, requireAuth, async (req, res) => {
    const q = validate(TasksQuery, req, 'query');
    const page = await service.list(req.user!.id, { status: q.status as TaskStatus | undefined, cursor: q.cursor, limit: q.limit });
    res.json({ tasks: page.items.map(taskJson), nextCursor: page.nextCursor });
  });

  apiRoute(api, { method: 'get', path: '/tasks/:id', summary: 'One task and its per-page statistics', auth: 'user', request: { params: TaskParams }, responses: { 200: R.TaskDetailResponse } }, requireAuth, async (req, res) => {
    const id = taskIdOf(req);
    const task = await service.get(req.user!.id, id);
    const pages = await service.pages(req.user!.id, id);
    res.json({ task: taskJson(task), pageStats: pages.map(taskPageJson) });
  });

  apiRoute(
    api,
    {
      method: 'get',
      path: '/tasks/:id/result',
      summary: 'The result: the text (`txt`), pages, lines and words with boxes (`json`), or the searchable PDF (`pdf`); 410 result-expired once deleted under the retention policy',
      auth: 'user',
      request: { params: TaskParams, query: ResultQuery },
      responses: { 200: { description: 'The result in the format asked for.', content: { 'text/plain': z.string(), 'application/json': R.OcrResultJson, 'application/pdf': OCTET } } },
    },
    requireAuth,
    async (req, res) => {
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
    },
  );

  apiRoute(api, { method: 'get', path: '/tasks/:id/download', summary: 'The original file; 410 file-expired once deleted under the retention policy', auth: 'user', request: { params: TaskParams }, responses: { 200: { description: 'The uploaded file, as its detected type.', contentType: 'application/octet-stream', schema: OCTET } } }, requireAuth, async (req, res) => {
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

  apiRoute(api, { method: 'delete', path: '/tasks/:id', summary: "Delete the task's files (the ledger history stays)", auth: 'user', request: { params: TaskParams }, responses: { 204: { description: 'Deleted.' } } }, requireAuth, async (req, res) => {
    await service.remove(req.user!.id, taskIdOf(req));
    res.status(204).end();
  });

  apiRoute(api, { method: 'post', path: '/tasks/:id/retry', summary: 'Retry a failed task with a new hold', auth: 'user', request: { params: TaskParams, idempotencyKey: true }, responses: { 202: R.TaskResponse } }, requireAuth, async (req, res) => {
    const { task, replayed } = await service.retry(req.user!.id, taskIdOf(req), idempotencyKeyOf(req), req.apiKey);
    if (replayed) res.setHeader('Idempotent-Replayed', 'true');
    res.status(202).location(`/api/tasks/${task.id}`).json({ task: taskJson(task) });
  });

  apiRoute(api, { method: 'get', path: '/tasks/:id/events', summary: 'Server-sent events: `task` events with status and progress until a final status', auth: 'user', request: { params: TaskParams }, responses: { 200: { description: 'An event stream.', contentType: 'text/event-stream' } } }, requireAuth, async (req, res) => {
    const userId = req.user!.id;
    const first = await service.get(userId, taskIdOf(req));
    const release = events.acquire(userId); // 429 beyond the per-user cap
    streamTaskEvents(res, { first, hub: events, release, maxMs });
  });

  return api;
}
