import type PgBoss from 'pg-boss';
import type { Logger } from '../logger.ts';
import { OCR_DEAD_LETTER_QUEUE, OCR_QUEUE, type TaskJob, type TaskQueue } from './task-queue.ts';
import { createTaskRunner, type DocumentProcessor, type TaskRunnerDeps } from './task-runner.ts';

/** A processor the worker owns: it closes it on stop. */
export type OwnedProcessor = DocumentProcessor & { close(): Promise<void> };

export interface TaskWorkerOptions extends TaskRunnerDeps {
  queue: Pick<TaskQueue, 'boss' | 'pollingIntervalSeconds'> & Partial<Pick<TaskQueue, 'localWorkerIds'>>;
  /** Jobs run at once in this process; each slot has its own processor (Tesseract worker). */
  concurrency: number;
  /** Makes one processor per slot (the OCR processor; tests inject stubs). */
  createProcessor: () => OwnedProcessor;
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
  const { queue, logger } = options;
  const boss: PgBoss = queue.boss;
  const runner = createTaskRunner(options);
  const control = { stopping: false };
  const running = new Set<Promise<unknown>>();
  const processors: OwnedProcessor[] = [];
  const workerIds: string[] = [];

  for (let slot = 0; slot < Math.max(1, options.concurrency); slot++) {
    const processor = options.createProcessor();
    processors.push(processor);
    const id = await boss.work<TaskJob>(
        OCR_QUEUE,
        { includeMetadata: true, batchSize: 1, pollingIntervalSeconds: queue.pollingIntervalSeconds },
        async ([job]) => {
          if (!job) return;
          const run = runner.run(job.data, processor, { final: job.retryCount >= job.retryLimit, control });
          running.add(run);
          try {
            return { outcome: await run };
          } finally {
            running.delete(run);
          }
        },
      );
    workerIds.push(id);
    queue.localWorkerIds?.add(id);
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
        await Promise.race([Promise.allSettled([...running]), deadline]);
        await Promise.allSettled(processors.map((p) => p.close()));
        logger.info('task worker stopped');
      })();
      return stopped;
    },
  };
}
