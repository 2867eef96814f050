import { assertActiveMember, assertKeyMaySpendFrom, attributeHold, checkSpendPolicies, spenderOf, teamOfHold, type Spender, type SpendingKey } from '../teams/spend-policy.ts';
import crypto from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Config } from '../config.ts';
import type { Pricing } from '../credits/pricing-service.ts';
import { inTransaction, isUniqueViolation, type Db, type Trx } from '../db/database.ts';
import { ConflictError } from '../http/errors.ts';
import { keyHash, type IdempotencyKeys } from '../idempotency/idempotency-keys.ts';
import { InsufficientCreditsError, SpendCapExceededError } from '../ledger/ledger-errors.ts';
import type { SpendControls } from '../spend/spend-service.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import { paginate, timeKeyCursor } from '../pagination.ts';
import type { Page } from '../ledger/ledger-types.ts';
import type { Logger } from '../logger.ts';
import { inspectDocument, type DocumentInfo } from './document-inspector.ts';
import { newStorageKey, type FileStorage } from './file-storage.ts';
import type { TaskJob } from './task-queue.ts';
import { DocumentRejectedProblem, RetentionDeletedError, TaskNotFoundError, TaskOutputMissingError, TaskStateError, UploadNotFoundError } from './task-problems.ts';
import * as uploads from './task-uploads-store.ts';
import type { TaskUpload } from './task-uploads-store.ts';
import { DocumentRejectedError } from './tasks-errors.ts';
import { ocrCost } from './task-pricing.ts';
import { taskJson } from './tasks-json.ts';
import * as store from './tasks-store.ts';
import type { Task, TaskPage, TaskStatus } from './tasks-store.ts';

export { OCR_OPERATION } from './task-pricing.ts';

/**
 * What the service needs of the queue: send a job (in the caller's transaction when given, so the
 * job exists exactly when the task does), and cancel one (optional).
 */
export interface JobSender {
  enqueue(job: TaskJob, trx?: Trx): Promise<void>;
  cancel?(job: TaskJob): Promise<void>;
}

export interface TasksServiceDeps {
  db: Db;
  ledger: Ledger;
  pricing: Pricing;
  storage: FileStorage;
  queue: JobSender;
  idempotency: IdempotencyKeys;
  /** `retention`: how long uploads and results are kept (the 410s name the days). */
  config: Pick<Readonly<Config>, 'appUrl' | 'tasks' | 'retention'>;
  logger: Logger;
  /** Spend controls: a job refused by a cap is audited, and cap alerts are sent after a hold. */
  spend?: Pick<SpendControls, 'recordBlocked' | 'deliverAlerts'>;
}

/** An uploaded file as multer hands it over. */
export interface UploadedFile {
  bytes: Buffer;
  /** The client's file name: shown and used for downloads, never for storage. */
  fileName: string;
  /** The OCR language asked for (`eng`, `fra`, `deu`, `spa`); null or absent: detected per page. */
  language?: string | null;
}

/** What a document will cost: `millicredits` for `pages` pages of `kind`. */
export interface DocumentEstimate extends DocumentInfo {
  millicredits: number;
}

/** Result of a create or retry: `replayed` when the Idempotency-Key had been used and nothing new was held. */
export interface TaskResult {
  task: Task;
  replayed: boolean;
}

/**
 * The replay of an Idempotency-Key whose task has since been deleted: the response the first
 * request got (202 `{task}` as it was then), and nothing held again.
 */
export interface DeletedTaskReplay {
  task: null;
  replayed: true;
  statusCode: number;
  response: Record<string, unknown>;
}

/** An upload inspected and priced, ready for its hold and its task. Amounts in millicredits. */
export interface PreparedUpload {
  userId: string;
  taskId: string;
  /** The hold to place for it: `task:<taskId>`. */
  holdId: string;
  fileName: string;
  info: DocumentInfo;
  millicredits: number;
  /** The statement line of the hold. */
  reason: string;
  bytes: Buffer;
  idempotencyKey: string | undefined;
  /** Where the file will be stored (a generated key, never the client's name). */
  storageKey: string;
  /** The OCR language asked for; null: detected per page. */
  language: string | null;
}

/** What an Idempotency-Key of an upload is recorded as. */
const CREATE_OPERATION = 'task.create';

const LIST_MAX = 100;

/** How long an upload waits for its confirmation before it is forgotten, ms. */
export const UPLOAD_TTL_MS = 60 * 60_000;

/** An upload kept for confirmation, and what it would hold at today's price. */
export interface StagedUpload {
  upload: TaskUpload;
  millicredits: number;
}

/**
 * Bidirectional-text controls (Unicode UAX #9: embeddings, overrides, isolates, marks). In a file
 * name they only serve to disguise it: `invoice\u202Egnp.exe` displays as `invoiceexe.png`.
 */
const BIDI_CONTROLS = /[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g;

/**
 * A readable, safe display name from a client's file name: no directories, no control
 * characters, no bidirectional-text controls, at most 200 characters; `document` when nothing is left.
 */
export function cleanFileName(name: string | undefined): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const clean = base.replace(/[\u0000-\u001f\u007f]/g, '').replace(BIDI_CONTROLS, '').replace(/\s+/g, ' ').trim();
  return [...clean].slice(0, 200).join('') || 'document';
}

const sha256 = (bytes: Uint8Array) => crypto.createHash('sha256').update(bytes).digest('hex');

/**
 * The OCR tasks of users: upload (inspect, hold, store, queue), read, list, delete and retry.
 * Every amount is millicredits. Each task owns one hold (`task:<id>`, reference `{type: 'task',
 * id}`) that the worker posts or voids; see task-runner.ts for settlement.
 */
export function createTasksService(deps: TasksServiceDeps) {
  const { db, ledger, pricing, storage, queue, idempotency, config, logger, spend } = deps;
  const limits = { maxPagePixels: config.tasks.maxPagePixels, renderDpi: config.tasks.renderDpi, maxPages: config.tasks.maxPages };
  const topUpUrl = `${config.appUrl}/pricing`;

  async function inspect(bytes: Buffer): Promise<DocumentInfo> {
    try {
      return await inspectDocument(bytes, limits);
    } catch (err) {
      if (err instanceof DocumentRejectedError) throw new DocumentRejectedProblem(err);
      throw err;
    }
  }

  /**
   * Places the task's hold in `trx`: on the user's own wallet, or — with a `spender` (a team's
   * pool, an API key) — on `spender.ownerId`'s account after its policies passed, recording who spent.
   */
  async function reserveFor(userId: string, input: { holdId: string; taskId: string; millicredits: number; reason: string }, trx: Trx, spender?: Spender) {
    try {
      if (spender) await checkSpendPolicies(trx, spender, input.millicredits, new Date());
      const hold = await ledger.reserve(
        {
          holdId: input.holdId,
          userId: spender?.ownerId ?? userId,
          millicredits: input.millicredits,
          timeoutMs: config.tasks.holdTimeoutMs,
          actor: `user:${userId}`,
          reason: input.reason,
          reference: { type: 'task', id: input.taskId },
        },
        trx,
      );
      if (spender) await attributeHold(trx, spender, hold);
      return hold;
    } catch (err) {
      if (err instanceof InsufficientCreditsError) {
        throw new InsufficientCreditsError(err.requiredMillicredits, err.availableMillicredits, { topUpUrl });
      }
      throw err;
    }
  }

  /**
   * After an upload's hold: a refusal by a spend cap is audited (once its transaction has rolled
   * back); after a hold that stands, cap alerts it recorded go out now rather than at the next
   * sweep. (Auto-recharge checks after the hold through the ledger: src/recharge/recharge-ledger.ts.)
   */
  async function afterHold(userId: string, prepared: { taskId: string; fileName: string }, err?: unknown): Promise<void> {
    if (!spend) return;
    if (err instanceof SpendCapExceededError) {
      await spend.recordBlocked(userId, err, { type: 'ocr', name: prepared.fileName, id: prepared.taskId }).catch((e: unknown) => {
        logger.error({ err: e }, 'could not audit a job blocked by a spend cap');
      });
    } else if (!err) {
      spend.deliverAlerts().catch((e: unknown) => logger.error({ err: e }, 'cap alert delivery failed'));
    }
  }

  /** The fingerprint of an upload for its Idempotency-Key: the operation and the file's content. */
  const requestHashOf = (bytes: Uint8Array) => keyHash(CREATE_OPERATION, sha256(bytes));

  function replayOf(existing: Task, bytes: Buffer): TaskResult {
    if (existing.sha256 !== sha256(bytes)) throw conflictingKey();
    return { task: existing, replayed: true };
  }

  const conflictingKey = () => new ConflictError('This Idempotency-Key was already used to upload a different file.', 'idempotency_conflict');

  /** 410 when the retention sweeper deleted the task's results (`result`) or its upload (`file`). */
  function assertKept(task: Task, what: 'result' | 'file', then?: string): void {
    if (what === 'result' && task.resultsDeletedAt) throw new RetentionDeletedError('result', task.resultsDeletedAt, config.retention.resultDays, then);
    if (what === 'file' && task.fileDeletedAt) throw new RetentionDeletedError('file', task.fileDeletedAt, config.retention.uploadDays, then);
  }

  const service = {
    /** How long uploads and results are kept, days (`RETENTION_UPLOAD_DAYS`, `RETENTION_RESULT_DAYS`): the task page says so. */
    retention: { uploadDays: config.retention.uploadDays, resultDays: config.retention.resultDays },

    /**
     * Inspects a document and prices it, without storing or holding anything.
     * @throws {DocumentRejectedProblem} 400 when the document is refused
     */
    async estimate(bytes: Buffer): Promise<DocumentEstimate> {
      const info = await inspect(bytes);
      const { millicredits } = await ocrCost(pricing, info.pages);
      return { ...info, millicredits };
    },

    /**
     * The earlier answer to this user's `idempotencyKey` for an upload, if the key was used in the
     * last 24 hours (or its task still exists): the task as it is now, or, when it was deleted, the
     * response the first request got. Undefined when the key is new.
     * @throws {ConflictError} 409 `idempotency_conflict` when the key came with a different file
     */
    async replay(userId: string, idempotencyKey: string, bytes: Buffer): Promise<TaskResult | DeletedTaskReplay | undefined> {
      const stored = await idempotency.find(userId, idempotencyKey);
      if (stored) {
        if (stored.operation !== CREATE_OPERATION || stored.requestHash !== requestHashOf(bytes)) throw conflictingKey();
        const task = stored.resource ? await store.findTask(db, stored.resource.id, { userId }) : undefined;
        if (task) return { task, replayed: true };
        return { task: null, replayed: true, statusCode: stored.statusCode, response: stored.response };
      }
      const existing = await store.findByIdempotencyKey(db, userId, idempotencyKey);
      return existing ? replayOf(existing, bytes) : undefined;
    },

    /**
     * Reads an upload's type and page count from its content and prices it: what its hold and
     * task will be. Nothing is stored or held.
     * @throws {DocumentRejectedProblem} 400 when the document is refused
     */
    async prepare(userId: string, file: UploadedFile, idempotencyKey?: string): Promise<PreparedUpload> {
      const info = await inspect(file.bytes);
      const { millicredits } = await ocrCost(pricing, info.pages);
      const taskId = crypto.randomUUID();
      const fileName = cleanFileName(file.fileName);
      return {
        userId,
        taskId,
        holdId: `task:${taskId}`,
        fileName,
        info,
        millicredits,
        reason: `OCR of ${fileName} (${info.pages} page${info.pages === 1 ? '' : 's'})`,
        bytes: file.bytes,
        idempotencyKey,
        storageKey: newStorageKey(),
        language: file.language ?? null,
      };
    },

    /**
     * In `trx`, the transaction that holds the upload's estimate (hold `prepared.holdId`): stores
     * the file, inserts the task, remembers the Idempotency-Key and queues the job. When the
     * transaction commits all of them exist; when it rolls back none does (the file is removed).
     * A concurrent request with the same key that committed first → {@link IdempotencyKeyTakenError}.
     */
    async createHeld(trx: Trx, prepared: PreparedUpload): Promise<Task> {
      const { storageKey } = prepared;
      await storage.put(storageKey, prepared.bytes);
      try {
        const task = await store.insertTask(trx, {
          id: prepared.taskId,
          userId: prepared.userId,
          fileName: prepared.fileName,
          kind: prepared.info.kind,
          mimeType: prepared.info.mimeType,
          sizeBytes: prepared.bytes.byteLength,
          sha256: sha256(prepared.bytes),
          storageKey,
          pages: prepared.info.pages,
          estimatedMillicredits: prepared.millicredits,
          holdId: prepared.holdId,
          jobId: crypto.randomUUID(),
          idempotencyKey: prepared.idempotencyKey ?? null,
          language: prepared.language,
        });
        if (prepared.idempotencyKey) {
          const remembered = await idempotency.remember(trx, {
            userId: prepared.userId,
            key: prepared.idempotencyKey,
            operation: CREATE_OPERATION,
            requestHash: requestHashOf(prepared.bytes),
            statusCode: 202,
            response: { task: taskJson(task) },
            resource: { type: 'task', id: task.id },
          });
          if (!remembered) throw new IdempotencyKeyTakenError();
        }
        await queue.enqueue({ taskId: task.id, jobId: task.jobId }, trx);
        return task;
      } catch (err) {
        await storage.remove(storageKey);
        throw err;
      }
    },

    /**
     * After {@link createHeld} or its transaction failed: removes the stored file; then, when the
     * upload lost a race for its Idempotency-Key to a request that committed first, returns that
     * request's result; otherwise rethrows `err`.
     */
    async replayAfterRace(err: unknown, prepared: PreparedUpload): Promise<TaskResult | DeletedTaskReplay> {
      await storage.remove(prepared.storageKey);
      const lostRace =
        err instanceof IdempotencyKeyTakenError || isUniqueViolation(err, 'tasks_user_idempotency_key') || isUniqueViolation(err, 'idempotency_keys_pkey');
      if (prepared.idempotencyKey && lostRace) {
        const winner = await service.replay(prepared.userId, prepared.idempotencyKey, prepared.bytes);
        if (winner) return winner;
      }
      throw err;
    },

    /**
     * Creates a task from an upload, the same steps as the upload route (requireCredits) takes:
     * (1) an `idempotencyKey` used by this user in the last 24 hours replays that request
     * (`replayed`, nothing new held; a different file → 409); (2) the type and page count are read
     * from the content (400 {@link DocumentRejectedProblem}, nothing held or stored); (3) one
     * transaction holds the estimate (402 {@link InsufficientCreditsError} with `topUpUrl`), stores
     * the file, inserts the task and queues its job.
     */
    afterHold,

    async create(userId: string, file: UploadedFile, idempotencyKey?: string, spender?: Spender): Promise<TaskResult | DeletedTaskReplay> {
      if (idempotencyKey) {
        const earlier = await service.replay(userId, idempotencyKey, file.bytes);
        if (earlier) return earlier;
      }
      const prepared = await service.prepare(userId, file, idempotencyKey);
      try {
        const task = await inTransaction(db, async (trx) => {
          await reserveFor(userId, { holdId: prepared.holdId, taskId: prepared.taskId, millicredits: prepared.millicredits, reason: prepared.reason }, trx, spender);
          return service.createHeld(trx, prepared);
        });
        await afterHold(userId, prepared);
        return { task, replayed: false };
      } catch (err) {
        await afterHold(userId, prepared, err);
        return service.replayAfterRace(err, prepared);
      }
    },

    /**
     * Keeps an upload for confirmation (the first half of "estimate once, confirm"): inspects it
     * (400 {@link DocumentRejectedProblem}), stores it under a generated key with its OCR
     * `language` (already validated by the caller, e.g. with `UploadFields`; null: detected per
     * page) and prices it at today's price. Nothing is held. It waits {@link UPLOAD_TTL_MS}; expired uploads of anyone
     * are removed here, a few at a time. With a `spender` (src/teams/wallets.ts) the upload keeps its
     * wallet (a team's pool: 403 `not_a_team_member` unless the user is a current member) and the
     * API key that staged it, and {@link confirm} spends the same way.
     */
    async stage(userId: string, file: UploadedFile, spender?: Spender): Promise<StagedUpload> {
      // A pool the user cannot spend from is refused before anything is kept (checked again at the hold).
      if (spender?.teamId) await assertActiveMember(db, spender.teamId, userId);
      const info = await inspect(file.bytes);
      const { millicredits } = await ocrCost(pricing, info.pages);
      const storageKey = newStorageKey();
      await storage.put(storageKey, file.bytes);
      let upload: TaskUpload;
      try {
        upload = await uploads.insertUpload(db, {
          id: crypto.randomUUID(),
          userId,
          fileName: cleanFileName(file.fileName),
          kind: info.kind,
          mimeType: info.mimeType,
          sizeBytes: file.bytes.byteLength,
          sha256: sha256(file.bytes),
          storageKey,
          pages: info.pages,
          language: file.language ?? null,
          teamId: spender?.teamId ?? null,
          apiKeyId: spender?.apiKeyId ?? null,
          expiresAt: new Date(Date.now() + UPLOAD_TTL_MS),
        });
      } catch (err) {
        await storage.remove(storageKey);
        throw err;
      }
      const stale = await uploads.deleteExpiredUploads(db, 20);
      for (const key of stale) await storage.remove(key).catch((err: unknown) => logger.warn({ err }, 'could not remove an expired upload'));
      return { upload, millicredits };
    },

    /** The user's uploads among `ids` still waiting for confirmation, priced at today's price. */
    async staged(userId: string, ids: readonly string[]): Promise<StagedUpload[]> {
      const rows = await uploads.findUploads(db, userId, ids);
      return Promise.all(rows.map(async (upload) => ({ upload, millicredits: (await ocrCost(pricing, upload.pages)).millicredits })));
    },

    /**
     * Turns a kept upload into a task with the same id (and the upload's OCR language): one
     * transaction holds the estimate at today's price (402 {@link InsufficientCreditsError}; the
     * upload stays for a later try), inserts the task, deletes the upload and queues the job. Confirming the same upload
     * again returns its task (`replayed`).
     * The hold goes on the wallet kept with the upload (a team's pool within the member's budgets),
     * attributed to `key` — the confirming request's API key — or else to the key that staged it.
     * @throws {UploadNotFoundError} 404 when the upload is not the user's, or expired
     * @throws 403 `member-budget-exceeded`, `key-credit-limit-exceeded`, `not_a_team_member`,
     *   `wallet_not_allowed_for_key` (src/teams/spend-policy.ts); the upload stays
     */
    async confirm(userId: string, uploadId: string, key?: SpendingKey | null): Promise<TaskResult> {
      let fileName = '';
      const outcome = await inTransaction(db, async (trx): Promise<TaskResult> => {
        const [upload] = await uploads.findUploads(trx, userId, [uploadId], { lock: true });
        if (!upload) {
          const existing = await store.findTask(trx, uploadId, { userId });
          if (existing) return { task: existing, replayed: true };
          throw new UploadNotFoundError();
        }
        fileName = upload.fileName;
        const { millicredits } = await ocrCost(pricing, upload.pages);
        const holdId = `task:${upload.id}`;
        assertKeyMaySpendFrom(key, upload.teamId);
        const spender = spenderOf(userId, upload.teamId, key?.id ?? upload.apiKeyId);
        await reserveFor(userId, { holdId, taskId: upload.id, millicredits, reason: `OCR of ${upload.fileName} (${upload.pages} page${upload.pages === 1 ? '' : 's'})` }, trx, spender);
        const task = await store.insertTask(trx, {
          id: upload.id,
          userId,
          fileName: upload.fileName,
          kind: upload.kind,
          mimeType: upload.mimeType,
          sizeBytes: upload.sizeBytes,
          sha256: upload.sha256,
          storageKey: upload.storageKey,
          pages: upload.pages,
          estimatedMillicredits: millicredits,
          holdId,
          jobId: crypto.randomUUID(),
          idempotencyKey: null,
          language: upload.language,
        });
        await uploads.deleteUpload(trx, upload.id);
        // The job is queued in the same transaction as its hold and task (as the upload route does).
        await queue.enqueue({ taskId: task.id, jobId: task.jobId }, trx);
        return { task, replayed: false };
      }).catch(async (err: unknown) => {
        // A spend cap's refusal is audited once the transaction has rolled back.
        if (err instanceof SpendCapExceededError) await afterHold(userId, { taskId: uploadId, fileName }, err);
        throw err;
      });
      if (!outcome.replayed) await afterHold(userId, { taskId: outcome.task.id, fileName: outcome.task.fileName });
      return outcome;
    },

    /** The user's task. @throws {TaskNotFoundError} 404 when missing or someone else's. */
    async get(userId: string, id: string): Promise<Task> {
      const task = await store.findTask(db, id, { userId });
      if (!task) throw new TaskNotFoundError();
      return task;
    },

    /** The tasks with these ids, whoever owns them (the progress streams' one poller; ids checked by the caller). */
    async findMany(ids: string[]): Promise<Task[]> {
      return store.findTasks(db, ids);
    },

    /** Per-page statistics of the user's task (empty until it completed). */
    async pages(userId: string, id: string): Promise<TaskPage[]> {
      await service.get(userId, id);
      return store.taskPages(db, id);
    },

    /**
     * The user's tasks, newest first, optionally of one `status`. `limit` 1–100 (default 20);
     * `cursor` is the previous page's `nextCursor` (400 when it is not one).
     */
    async list(userId: string, options: { status?: TaskStatus; cursor?: string; limit?: number } = {}): Promise<Page<Task>> {
      return paginate({ limit: options.limit, default: 20, max: LIST_MAX, cursor: options.cursor, codec: timeKeyCursor }, (n, after) =>
        store.listTasks(db, userId, { status: options.status }, n, after),
      );
    },

    /**
     * The extracted text.
     * @throws {TaskStateError} 409 until the task has completed
     * @throws {RetentionDeletedError} 410 `result_expired` once the retention sweeper deleted it
     */
    async result(userId: string, id: string): Promise<{ task: Task; text: string }> {
      const task = await service.get(userId, id);
      if (task.status !== 'completed') {
        throw new TaskStateError(task.status, `The task is ${task.status}: its text is available once it has completed.`);
      }
      assertKept(task, 'result');
      return { task, text: (await store.resultText(db, id)) ?? '' };
    },

    /**
     * A stored output of the completed task: the JSON result (`json`) or the searchable PDF (`pdf`).
     * @throws {TaskStateError} 409 until the task has completed
     * @throws {RetentionDeletedError} 410 `result_expired` once the retention sweeper deleted it
     * @throws {TaskNotFoundError} 404 when that output was not made (or its file is gone)
     */
    async resultFile(userId: string, id: string, format: 'json' | 'pdf'): Promise<{ task: Task; stream: Readable }> {
      const task = await service.get(userId, id);
      if (task.status !== 'completed') {
        throw new TaskStateError(task.status, `The task is ${task.status}: its results are available once it has completed.`);
      }
      assertKept(task, 'result');
      const key = format === 'json' ? task.resultKey : task.searchablePdfKey;
      if (!key) throw new TaskOutputMissingError(format === 'pdf' ? 'No searchable PDF was made for this task.' : 'This task has no JSON result.');
      try {
        return { task, stream: await storage.stream(key) };
      } catch (err) {
        logger.warn({ err, taskId: id }, 'stored result missing');
        throw new TaskNotFoundError();
      }
    },

    /**
     * The uploaded file, as stored.
     * @throws {RetentionDeletedError} 410 `file_expired` once the retention sweeper deleted it
     * @throws {TaskNotFoundError} 404, also when the file is gone otherwise
     */
    async original(userId: string, id: string): Promise<{ task: Task; stream: Readable }> {
      const task = await service.get(userId, id);
      assertKept(task, 'file');
      try {
        return { task, stream: await storage.stream(task.storageKey) };
      } catch (err) {
        logger.warn({ err, taskId: id }, 'stored file missing');
        throw new TaskNotFoundError();
      }
    },

    /**
     * Deletes the user's task and its files. An unfinished task's hold is voided first (the user
     * pays nothing) and its job cancelled. The ledger keeps its transfers and holds.
     */
    async remove(userId: string, id: string): Promise<void> {
      const task = await inTransaction(db, async (trx) => {
        const t = await store.findTask(trx, id, { userId, lock: true });
        if (!t) throw new TaskNotFoundError();
        const hold = await ledger.findHold(t.holdId, trx);
        if (hold?.status === 'active') await ledger.void({ holdId: t.holdId, actor: `user:${userId}` }, trx);
        await store.deleteTask(trx, id);
        return t;
      });
      await storage.remove(task.storageKey);
      if (task.resultKey) await storage.remove(task.resultKey);
      if (task.searchablePdfKey) await storage.remove(task.searchablePdfKey);
      if (store.UNFINISHED.includes(task.status)) {
        await queue.cancel?.({ taskId: task.id, jobId: task.jobId }).catch((err: unknown) => logger.warn({ err, taskId: id }, 'could not cancel job'));
      }
    },

    /**
     * Runs a failed task again under a new hold for its estimate at today's price (402 when short)
     * and a new job. With an `idempotencyKey`, repeating the request returns the same try.
     * The new hold goes on the wallet the failed try spent from (a team's pool within the member's
     * budgets, issue 16), attributed to the request's API `key` if any.
     * @throws {TaskStateError} 409 unless the task has failed
     * @throws {RetentionDeletedError} 410 `file_expired` when its upload was deleted under the retention policy
     */
    async retry(userId: string, id: string, idempotencyKey?: string, key?: SpendingKey | null): Promise<TaskResult> {
      const holdId = idempotencyKey
        ? `task:${id}:retry:${keyHash(userId, idempotencyKey).slice(0, 32)}`
        : `task:${id}:retry:${crypto.randomUUID()}`;
      const outcome = await inTransaction(db, async (trx) => {
        const t = await store.findTask(trx, id, { userId, lock: true });
        if (!t) throw new TaskNotFoundError();
        if (t.holdId === holdId) return { task: t, replayed: true };
        if (t.status !== 'failed') throw new TaskStateError(t.status, `Only a failed task can be retried; this one is ${t.status}.`);
        assertKept(t, 'file', 'Upload it again to read it.');
        const { millicredits } = await ocrCost(pricing, t.pages);
        const teamId = await teamOfHold(trx, t.holdId);
        assertKeyMaySpendFrom(key, teamId);
        await reserveFor(userId, { holdId, taskId: id, millicredits, reason: `OCR of ${t.fileName} (retry)` }, trx, spenderOf(userId, teamId, key?.id ?? null));
        return { task: await store.requeue(trx, id, holdId, crypto.randomUUID(), millicredits), replayed: false };
      });
      if (outcome.replayed) return outcome;
      try {
        await queue.enqueue({ taskId: id, jobId: outcome.task.jobId });
      } catch (err) {
        logger.error({ err, taskId: id }, 'could not queue retry; hold voided');
        await inTransaction(db, async (trx) => {
          await ledger.void({ holdId, actor: 'system' }, trx);
          await store.markFailed(trx, id, { code: 'queue_unavailable', detail: 'The task could not be queued. Nothing was charged; try again.' });
        });
        throw err;
      }
      return outcome;
    },
  };
  return service;
}

export type TasksService = ReturnType<typeof createTasksService>;

/** A concurrent request with the same Idempotency-Key committed first; this one rolls back and replays it. */
export class IdempotencyKeyTakenError extends Error {
  constructor() {
    super('the Idempotency-Key was taken by a concurrent request');
    this.name = 'IdempotencyKeyTakenError';
  }
}
