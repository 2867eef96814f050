import type { Pricing } from '../credits/pricing-service.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { inTransaction, type Db, type Trx } from '../db/database.ts';
import { HoldStateError } from '../ledger/ledger-errors.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { Hold } from '../ledger/ledger-types.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { OcrProcessor, OcrResult } from './ocr-processor.ts';
import { newStorageKey, StoredFileMissingError, type FileStorage } from './file-storage.ts';
import { isOcrLanguage, OCR_LANGUAGES } from './ocr-languages.ts';
import type { TaskJob } from './task-queue.ts';
import { DocumentRejectedError } from './tasks-errors.ts';
import { ocrSettlement } from './task-pricing.ts';
import * as store from './tasks-store.ts';
import type { Task } from './tasks-store.ts';

/** The part of the OCR processor a run needs (tests inject their own). */
export type DocumentProcessor = Pick<OcrProcessor, 'process'>;

/** Why a task failed, as stored on the task (`error_code`, `error_detail`) and shown to its owner. */
export interface TaskError {
  code: string;
  detail: string;
}

/** How a run ended when it did not throw. */
export type RunOutcome =
  /** Posted the actual cost and stored the result. */
  | 'completed'
  /** Failed for good (refused document, missing file, hold gone): hold voided, nothing charged. */
  | 'failed'
  /** Nothing to do: the task is settled, deleted, or belongs to a newer job. */
  | 'skipped'
  /** A newer attempt took the task over while this one ran; that one settles it. */
  | 'superseded';

/**
 * One attempt failed and will be retried by pg-boss (`final` was false), or failed for good and
 * was settled (`final` true). The task records `error` either way.
 */
export class AttemptFailedError extends Error {
  constructor(
    readonly error: TaskError,
    readonly final: boolean,
    options?: { cause?: unknown },
  ) {
    super(error.detail, options);
    this.name = 'AttemptFailedError';
  }
}

/** Thrown from the progress callback to stop a run: the worker is shutting down. */
export class WorkerStoppingError extends Error {
  constructor() {
    super('The worker is shutting down; the task will be retried.');
    this.name = 'WorkerStoppingError';
  }
}

class SupersededError extends Error {}

/**
 * The transfer's reason: what was read and what each kind of page cost, e.g.
 * "OCR of scan.pdf: 3 OCR pages × 0.5 + 1 text-layer page × 0.1 + 1 blank page × 0 + 1 per document".
 */
export function settlementReason(
  fileName: string,
  priced: { base: number; lines: Array<{ component: string; units: number; millicredits: number }> },
): string {
  const labels: Record<string, string> = { ocr: 'OCR page', 'text-layer': 'text-layer page', blank: 'blank page' };
  const parts = priced.lines.map((line) => {
    const label = labels[line.component] ?? line.component;
    return `${line.units} ${label}${line.units === 1 ? '' : 's'} × ${millicreditsToCredits(line.millicredits)}`;
  });
  parts.push(`${millicreditsToCredits(priced.base)} per document`);
  return `OCR of ${fileName}: ${parts.join(' + ')}`;
}

/**
 * The JSON result of a task (`GET /api/tasks/:id/result?format=json`): every page with how it was
 * read, its language, the quarter turn applied, its size in pixels as processed, its mean
 * confidence and low-confidence flag, its text, and its lines and words with boxes in those
 * pixels (origin top-left) and confidences (0–100; null for words of a text layer, whose boxes are
 * in pixels of the page at renderDpi).
 */
export function resultDocument(task: Pick<Task, 'fileName'>, result: OcrResult) {
  return {
    fileName: task.fileName,
    pageCount: result.pageCount,
    words: result.words,
    meanConfidence: result.meanConfidence,
    pages: result.pages.map((page) => ({
      page: page.page,
      source: page.source,
      language: page.language,
      languageName: page.language ? OCR_LANGUAGES[page.language] : null,
      rotation: page.rotation,
      width: page.width,
      height: page.height,
      confidence: page.confidence,
      lowConfidence: page.lowConfidence,
      words: page.words,
      text: page.text,
      lines: page.lines,
    })),
  };
}

export interface TaskRunnerDeps {
  db: Db;
  ledger: Ledger;
  pricing: Pricing;
  storage: FileStorage;
  logger: Logger;
  /** Job durations and pages per second (`tally_job_*`); none counted without it. */
  metrics?: Pick<Metrics, 'jobDuration' | 'jobPages' | 'jobPagesPerSecond'>;
}

/** A task locked for settlement, with its hold. */
interface Guarded {
  task: Task;
  hold: Hold | undefined;
  holdActive: boolean;
}

export interface RunOptions {
  /** True on the last attempt pg-boss will make: a failure now voids the hold. */
  final: boolean;
  /** Checked after every page; `stopping` ends the run at the next page boundary. */
  control?: { stopping: boolean; leaseLost?: boolean };
}

function describe(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.length > 500 ? `${message.slice(0, 500)}…` : message;
}

function holdGone(hold: Hold | undefined): TaskError {
  if (hold?.status === 'expired') {
    return {
      code: 'hold_expired',
      detail: 'The task did not finish before its hold timed out. The hold was released and nothing was charged.',
    };
  }
  return { code: 'hold_released', detail: 'The credits held for this task were released before it finished. Nothing was charged.' };
}

/**
 * Runs OCR tasks and settles their holds exactly once (DESIGN.md invariant 5):
 *
 * - success: in one transaction, post the actual cost (base + per page for the pages processed,
 *   never above the hold) and mark the task `completed` with its text and statistics;
 * - final failure: in one transaction, void the hold and mark the task `failed` with the error;
 *   the user pays nothing;
 * - a retried job whose task is already settled does nothing, so a worker killed after the
 *   commit cannot post twice; a hold voided meanwhile (timeout sweeper, task deleted) is never
 *   posted: the task fails with `hold_expired` instead.
 *
 * Each attempt bumps `tasks.attempts`; progress writes are conditional on it, so an older attempt
 * still running (pg-boss expired it) stops at its next page once a newer one started.
 */
export function createTaskRunner(deps: TaskRunnerDeps) {
  const { db, ledger, pricing, storage, logger } = deps;

  /**
   * The settlement guard, the one way into settling a task: in `trx`, locks the task (of `job`,
   * ignoring a stale job of an earlier try; or by id), checks it is unfinished and finds its hold.
   * Undefined when there is nothing to settle (task gone, finished, or superseded). `holdActive`
   * false means the hold was voided or expired meanwhile: the task must not be charged.
   */
  async function guardUnfinished(trx: Trx, target: { job: TaskJob } | { taskId: string }): Promise<Guarded | undefined> {
    const id = 'job' in target ? target.job.taskId : target.taskId;
    const task = await store.findTask(trx, id, { lock: true });
    if (!task || ('job' in target && task.jobId !== target.job.jobId)) return undefined;
    if (!store.UNFINISHED.includes(task.status)) return undefined;
    const hold = await ledger.findHold(task.holdId, trx);
    return { task, hold, holdActive: hold?.status === 'active' };
  }

  /** Writes the JSON result and the searchable PDF to storage, before the settling transaction. */
  async function storeOutputs(task: Task, result: OcrResult): Promise<{ resultKey: string; searchablePdfKey: string | null }> {
    const resultKey = newStorageKey();
    await storage.put(resultKey, Buffer.from(JSON.stringify(resultDocument(task, result)), 'utf8'));
    let searchablePdfKey: string | null = null;
    if (result.searchablePdf) {
      searchablePdfKey = newStorageKey();
      await storage.put(searchablePdfKey, result.searchablePdf);
    }
    return { resultKey, searchablePdfKey };
  }

  async function settleSuccess(job: TaskJob, task: Task, result: OcrResult): Promise<RunOutcome> {
    const files = await storeOutputs(task, result);
    const outcome = await inTransaction(db, async (trx): Promise<RunOutcome> => {
      const guarded = await guardUnfinished(trx, { job });
      if (!guarded) return 'skipped';
      const { task, hold } = guarded;
      if (!guarded.holdActive || !hold) {
        await store.markFailed(trx, task.id, holdGone(hold));
        return 'failed';
      }
      const pages = Math.max(1, result.pageCount);
      // Each page is priced as what it turned out to be (issue 12): OCR, text layer, or blank.
      const priced = await ocrSettlement(pricing, result.pages, trx);
      const charge = Math.min(priced.millicredits, hold.amount);
      const unitPrice = new Map(priced.lines.map((line) => [line.component, line.millicredits]));
      try {
        await ledger.post({ holdId: hold.id, millicredits: charge, actor: 'system', reason: settlementReason(task.fileName, priced) }, trx);
      } catch (err) {
        // The sweeper voided it between our read and the post's lock: never charge without a hold.
        if (!(err instanceof HoldStateError)) throw err;
        await store.markFailed(trx, task.id, holdGone(await ledger.findHold(task.holdId, trx)));
        return 'failed';
      }
      await store.markCompleted(trx, task.id, {
        chargedMillicredits: charge,
        text: result.text,
        pages,
        words: result.words,
        meanConfidence: result.meanConfidence,
        durationMs: result.durationMs,
        resultKey: files.resultKey,
        searchablePdfKey: files.searchablePdfKey,
        pageStats: result.pages.map((p) => ({
          page: p.page,
          source: p.source,
          words: p.words,
          confidence: p.confidence,
          durationMs: p.durationMs,
          language: p.language,
          rotation: p.rotation,
          lowConfidence: p.lowConfidence,
          chargedMillicredits: unitPrice.get(p.source) ?? null,
        })),
      });
      return 'completed';
    });
    if (outcome !== 'completed') {
      await storage.remove(files.resultKey);
      if (files.searchablePdfKey) await storage.remove(files.searchablePdfKey);
    }
    return outcome;
  }

  const runner = {
    /**
     * Runs one attempt of `job` with `processor`. Returns the {@link RunOutcome}; throws
     * {@link AttemptFailedError} when processing failed (after recording it: `final` → hold voided
     * and task failed; otherwise the task is back to `queued` for pg-boss's retry).
     * Refused documents and missing files fail at once: retrying cannot help them.
     */
    async run(job: TaskJob, processor: DocumentProcessor, options: RunOptions): Promise<RunOutcome> {
      const begun = await inTransaction(db, async (trx) => {
        const guarded = await guardUnfinished(trx, { job });
        if (!guarded) return undefined;
        if (!guarded.holdActive) {
          await store.markFailed(trx, guarded.task.id, holdGone(guarded.hold));
          return null;
        }
        return { task: guarded.task, attempt: await store.startAttempt(trx, guarded.task.id) };
      });
      if (begun === undefined) return 'skipped';
      if (begun === null) return 'failed';
      const { task, attempt } = begun;
      const log = logger.child({ taskId: task.id, jobId: job.jobId, attempt });

      let result: OcrResult;
      try {
        const bytes = await storage.read(task.storageKey);
        log.info({ kind: task.kind, pages: task.pages }, 'task processing');
        const language = isOcrLanguage(task.language) ? task.language : null;
        result = await processor.process(
          bytes,
          task.kind,
          async ({ page }) => {
            if (options.control?.leaseLost) throw new SupersededError(); // pg-boss gave the job to another attempt
            if (options.control?.stopping) throw new WorkerStoppingError();
            if (!(await store.recordProgress(db, task.id, attempt, page))) throw new SupersededError();
          },
          { language, searchablePdf: true },
        );
      } catch (err) {
        if (err instanceof SupersededError) return 'superseded';
        let error: TaskError;
        let retryable = true;
        if (err instanceof DocumentRejectedError) {
          error = { code: `document_${err.code}`, detail: err.detail };
          retryable = false;
        } else if (err instanceof StoredFileMissingError) {
          error = { code: 'file_missing', detail: 'The uploaded file is no longer stored.' };
          retryable = false;
        } else {
          error = { code: 'processing_error', detail: `Processing failed: ${describe(err)}` };
        }
        if (!retryable || options.final) {
          const detail = retryable ? `${error.detail} (after ${attempt} attempt${attempt === 1 ? '' : 's'}). Nothing was charged.` : `${error.detail} Nothing was charged.`;
          const settled = await runner.fail(job, { code: error.code, detail });
          log.warn({ err, error, settled }, 'task failed');
          if (!retryable) return settled ? 'failed' : 'skipped';
          throw new AttemptFailedError(error, true, { cause: err });
        }
        await store.markRetrying(db, task.id, attempt, error);
        log.warn({ err, error }, 'task attempt failed; pg-boss will retry it');
        throw new AttemptFailedError(error, false, { cause: err });
      }
      const outcome = await settleSuccess(job, task, result);
      if (outcome === 'completed' && deps.metrics) {
        deps.metrics.jobPages.inc(result.pageCount);
        if (result.durationMs > 0) deps.metrics.jobPagesPerSecond.observe(result.pageCount / (result.durationMs / 1000));
      }
      log.info({ outcome, pages: result.pageCount, durationMs: result.durationMs }, 'task settled');
      return outcome;
    },

    /**
     * Fails `job`'s task for good: voids its hold and marks it `failed` with `error`, in one
     * transaction. Returns false (and changes nothing) when the task is settled, gone, or belongs
     * to a newer job. Used on the last attempt and by the dead-letter worker.
     */
    async fail(job: TaskJob, error: TaskError): Promise<boolean> {
      return inTransaction(db, async (trx) => {
        const guarded = await guardUnfinished(trx, { job });
        if (!guarded) return false;
        if (guarded.holdActive) await ledger.void({ holdId: guarded.task.holdId, actor: 'system' }, trx);
        await store.markFailed(trx, guarded.task.id, error);
        return true;
      });
    },

    /**
     * Sweeper: fails unfinished tasks whose hold is no longer active (expired by the ledger's
     * timeout sweeper, e.g. a job that never finished). Returns how many it failed.
     */
    async sweep(batch = 100): Promise<number> {
      let count = 0;
      for (const { id } of await store.unfinishedWithoutHold(db, batch)) {
        const failed = await inTransaction(db, async (trx) => {
          const guarded = await guardUnfinished(trx, { taskId: id });
          if (!guarded || guarded.holdActive) return false;
          await store.markFailed(trx, id, holdGone(guarded.hold));
          return true;
        });
        if (failed) count++;
      }
      return count;
    },
  };
  const metrics = deps.metrics;
  if (metrics) {
    // Each attempt timed by how it ended: completed, failed, skipped, superseded, retrying, error.
    const run = runner.run;
    runner.run = async (job, processor, options) => {
      const end = metrics.jobDuration.startTimer();
      try {
        const outcome = await run(job, processor, options);
        end({ outcome });
        return outcome;
      } catch (err) {
        end({ outcome: err instanceof AttemptFailedError ? (err.final ? 'failed' : 'retrying') : 'error' });
        throw err;
      }
    };
  }
  return runner;
}

export type TaskRunner = ReturnType<typeof createTaskRunner>;
