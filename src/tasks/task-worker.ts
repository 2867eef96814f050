import type PgBoss from 'pg-boss';
import type { Logger } from '../logger.ts';
import { OCR_DEAD_LETTER_QUEUE, OCR_QUEUE, renewLease, type TaskJob, type TaskQueue } from './task-queue.ts';
import { createTaskRunner, type DocumentProcessor, type TaskRunnerDeps } from './task-runner.ts';

/** A processor the worker owns: it closes it on stop. */
export type OwnedProcessor = DocumentProcessor & { close(): Promise<void> };

export interface TaskWorkerOptions extends TaskRunnerDeps {
  queue: Pick<TaskQueue, 'boss' | 'pollingIntervalSeconds' | 'leaseSeconds'> & Partial<Pick<TaskQueue, 'localWorkerIds' | 'localWakers'>>;
  /** Jobs run at once in this process; each slot has its own processor (Tesseract worker). */
  concurrency: number;
  /** Makes one processor per slot (the OCR processor; tests inject stubs). */
  createProcessor: () => OwnedProcessor;
  /** The longest one attempt runs before its lease is left to lapse, seconds. Default 12 minutes. */
  maxAttemptSeconds?: number;
  /** How often unfinished tasks whose hold is gone are failed, ms. Default 60 s. */
  sweepIntervalMs?: number;
}

export interface TaskWorker {
  /** Stops taking jobs, ends the running ones at their next page (they are retried), closes the processors. */
  stop(timeoutMs?: number): Promise<void>;
}

function failureMessage(output: unknown): string {
  const o = output as { message?: unknown; value?: { message?: unknown } } | null | undefined;
  const message = o?.message ?? o?.value?.message;
  return typeof message === 'string' && message ? message : 'the job failed';
}

/**
 * Starts the OCR worker on `queue`'s pg-boss: `concurrency` slots take jobs from the `ocr` queue
 * and run them with {@link createTaskRunner} (the attempt is final when pg-boss has no retry
 * left); one more takes dead-lettered jobs (failed for good, including attempts that timed out
 * because their worker died) and voids their hold. A timer fails unfinished tasks whose hold the
 * ledger sweeper expired.
 */
export async function startTaskWorker(options: TaskWorkerOptions): Promise<TaskWorker> {
  const { queue, logger, db } = options;
  const boss: PgBoss = queue.boss;
  const runner = createTaskRunner(options);
  const control = { stopping: false };
  const running = new Set<Promise<unknown>>();
  const processors: OwnedProcessor[] = [];
  const workerIds: string[] = [];

  // a running job's lease is renewed every third of it (see task-queue.ts `renewLease`)
  const leaseMs = queue.leaseSeconds * 1000;
  const maxAttemptMs = (options.maxAttemptSeconds ?? 720) * 1000;
  /**
   * Runs one fetched job while renewing its lease every third of it, for at most
   * `maxAttemptSeconds` (then the lease lapses and pg-boss retries the job elsewhere). When a
   * renewal finds the job no longer ours, the run stops at its next page and reports nothing.
   */
  async function runLeased(job: PgBoss.JobWithMetadata<TaskJob>, processor: OwnedProcessor): Promise<void> {
    const started = Date.now();
    const runControl = { stopping: false, leaseLost: false };
    const syncStopping = setInterval(() => (runControl.stopping = control.stopping), 200);
    const renew = setInterval(() => {
      if (Date.now() - started > maxAttemptMs) {
        logger.warn({ taskId: job.data.taskId, jobId: job.id }, 'attempt ran longer than its limit; letting its lease lapse');
        runControl.leaseLost = true;
        clearInterval(renew);
        return;
      }
      renewLease(db, job).then(
        (ours) => {
          if (!ours) runControl.leaseLost = true;
        },
        (err: unknown) => logger.warn({ err, jobId: job.id }, 'could not renew a job lease'),
      );
    }, Math.max(1000, Math.floor(leaseMs / 3)));
    const run = runner.run(job.data, processor, { final: job.retryCount >= job.retryLimit, control: runControl });
    running.add(run);
    try {
      const outcome = await run;
      if (!runControl.leaseLost && (await renewLease(db, job))) await boss.complete(OCR_QUEUE, job.id, { outcome });
    } catch (err) {
      if (!runControl.leaseLost) await boss.fail(OCR_QUEUE, job.id, err as object);
    } finally {
      running.delete(run);
      clearInterval(renew);
      clearInterval(syncStopping);
    }
  }

  /**
   * One slot: fetch a job, run it, repeat; polls every `pollingIntervalSeconds` when idle, and
   * wakes at once when this process sends a job (`queue.localWakers`).
   */
  async function slot(processor: OwnedProcessor): Promise<void> {
    let wake: (() => void) | undefined;
    const waker = () => wake?.();
    queue.localWakers?.add(waker);
    const sleep = (ms: number) =>
      new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    while (!control.stopping) {
      try {
        const [job] = await boss.fetch<TaskJob>(OCR_QUEUE, { batchSize: 1, includeMetadata: true });
        if (job) {
          await runLeased(job, processor);
          continue;
        }
      } catch (err) {
        logger.error({ err }, 'task worker: fetching or settling a job failed');
      }
      await sleep(queue.pollingIntervalSeconds * 1000);
    }
    queue.localWakers?.delete(waker);
  }

  const slots: Array<Promise<void>> = [];
  for (let i = 0; i < Math.max(1, options.concurrency); i++) {
    const processor = options.createProcessor();
    processors.push(processor);
    slots.push(slot(processor));
  }
  workerIds.push(
    await boss.work<TaskJob>(OCR_DEAD_LETTER_QUEUE, { includeMetadata: true, batchSize: 1, pollingIntervalSeconds: 5 }, async ([job]) => {
      if (!job) return;
      const failed = await runner.fail(job.data, {
        code: 'processing_error',
        detail: `Processing failed: ${failureMessage(job.output)}. Nothing was charged.`,
      });
      if (failed) logger.warn({ taskId: job.data.taskId }, 'dead-lettered task failed; hold voided');
      return { failed };
    }),
  );

  const sweeper = setInterval(() => {
    runner.sweep().then(
      (n) => n > 0 && logger.info({ tasks: n }, 'failed unfinished tasks whose hold was released'),
      (err: unknown) => logger.error({ err }, 'task sweep failed'),
    );
  }, options.sweepIntervalMs ?? 60_000);
  sweeper.unref();
  logger.info({ concurrency: processors.length }, 'task worker started');

  let stopped: Promise<void> | undefined;
  return {
    stop(timeoutMs = 20_000) {
      stopped ??= (async () => {
        control.stopping = true;
        clearInterval(sweeper);
        for (const id of workerIds) {
          queue.localWorkerIds?.delete(id);
          await boss.offWork({ id });
        }
        const deadline = new Promise((resolve) => setTimeout(resolve, timeoutMs).unref());
        await Promise.race([Promise.allSettled([...running, ...slots]), deadline]);
        await Promise.allSettled(processors.map((p) => p.close()));
        logger.info('task worker stopped');
      })();
      return stopped;
    },
  };
}
