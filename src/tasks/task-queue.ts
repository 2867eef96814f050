import type { Knex } from 'knex';
import PgBoss from 'pg-boss';
import type pg from 'pg';
import type { Trx } from '../db/database.ts';
import type { Logger } from '../logger.ts';

/** The pg-boss queue of OCR jobs. */
export const OCR_QUEUE = 'ocr';
/**
 * Where pg-boss moves an OCR job that failed for good, including one whose last attempt timed out
 * because its worker died: the dead-letter worker voids the task's hold and marks it failed.
 */
export const OCR_DEAD_LETTER_QUEUE = 'ocr-failed';

/** The payload of an OCR job. `jobId` tells a stale job (of an earlier try) from the current one. */
export interface TaskJob {
  taskId: string;
  jobId: string;
}

export interface TaskQueueOptions {
  /** PostgreSQL URL of the app's database; pg-boss keeps its tables in the `pgboss` schema. */
  connectionString: string;
  logger: Logger;
  /** Retries after the first attempt (pg-boss `retryLimit`). Default 3. */
  retryLimit?: number;
  /** Base delay before a retry, seconds; doubled per retry with jitter (`retryBackoff`). Default 5. */
  retryDelaySeconds?: number;
  /**
   * The lease of a running job, seconds (pg-boss `expireInSeconds`): a worker renews it while the
   * job runs ({@link renewLease}); a job whose worker died stops being renewed and is failed and
   * retried by pg-boss's maintenance within about a lease and a half.
   */
  expireInSeconds: number;
  /** How often an idle worker polls for jobs, seconds (≥ 0.5, pg-boss's minimum). Default 0.5: a job waits at most half a second. */
  pollingIntervalSeconds?: number;
  /** How often pg-boss's maintenance fails timed-out jobs, seconds. Default: half the lease, 5–60 s. */
  maintenanceIntervalSeconds?: number;
  /** Connections in pg-boss's own pool. Default 4. */
  poolMax?: number;
}

/** The started queue: send and cancel jobs; `boss` is there for the worker. */
export interface TaskQueue {
  boss: PgBoss;
  pollingIntervalSeconds: number;
  /** The lease of a running job, seconds (`expireInSeconds`): the worker renews it ({@link renewLease}). */
  leaseSeconds: number;
  /**
   * Sends the task's job; sending the same `jobId` again is a no-op (the id is the job's key).
   * With `trx`, the job row is inserted in that transaction: it exists if and only if the
   * transaction commits (pg-boss's `db` option, given the transaction's own connection).
   */
  enqueue(job: TaskJob, trx?: Trx): Promise<void>;
  /** Cancels a job that has not finished (a deleted task); a finished or unknown job is ignored. */
  cancel(job: TaskJob): Promise<void>;
  /** Stops pg-boss: waits up to `timeoutMs` for jobs in progress, then fails them (they retry). */
  stop(timeoutMs?: number): Promise<void>;
  /**
   * pg-boss workers of the `ocr` queue in this process (the task worker adds them): a job sent
   * here wakes them as soon as it is committed instead of at their next poll, so with the worker
   * in the web process the hand-over takes milliseconds. Workers elsewhere still poll.
   */
  localWorkerIds: Set<string>;
  /** The same for the task worker's own fetch loops (leased jobs, task-worker.ts): called when a job is sent here. */
  localWakers: Set<() => void>;
}

/**
 * Renews the lease of a running job: moves its `started_on` to now, so pg-boss's maintenance
 * (which fails active jobs older than their `expire_in`) leaves it alone for another lease.
 * pg-boss 10 has no heartbeat of its own; this is the one place that writes its table.
 * `retryCount` tells this attempt from a later one of the same job id.
 *
 * @returns false when the job is no longer this attempt's (expired and retried, or finished)
 */
export async function renewLease(db: Knex, job: { id: string; retryCount: number }): Promise<boolean> {
  const r = await db.raw(`UPDATE pgboss.job SET started_on = now() WHERE name = ? AND id = ? AND state = 'active' AND retry_count = ?`, [
    OCR_QUEUE,
    job.id,
    job.retryCount,
  ]);
  return (r.rowCount ?? 0) > 0;
}

/**
 * pg-boss's `db` option over an open Knex transaction: its SQL (`$1` placeholders) runs on the
 * transaction's own pg connection, so the job commits or rolls back with the caller's work.
 * (Knex hands a transaction's connection out through its client's `acquireConnection`.)
 */
export async function pgBossDbOf(trx: Trx): Promise<PgBoss.Db> {
  const connection = (await (trx.client as { acquireConnection(): Promise<pg.ClientBase> }).acquireConnection()) as pg.ClientBase;
  return { executeSql: (text, values) => connection.query(text, values) };
}

/**
 * The longest one attempt may run (its lease is no longer renewed after that) for a hold of
 * `holdTimeoutMs`: the first attempt and `retryLimit`
 * retries, plus room for backoff, all fit in the hold's lifetime. At least 30 s, at most 4 hours.
 */
export function attemptTimeoutSeconds(holdTimeoutMs: number, retryLimit = 3): number {
  return Math.max(30, Math.min(4 * 3600, Math.floor(holdTimeoutMs / 1000 / (retryLimit + 2))));
}

/**
 * Starts pg-boss on the app's database (creating or migrating its `pgboss` schema) and makes sure
 * the OCR queue and its dead-letter queue exist with their retry policy: `retryLimit` retries
 * with exponential backoff from `retryDelaySeconds`, each attempt expiring after
 * `expireInSeconds`. Any number of processes may do this at once; every one can send and work.
 *
 * @throws whatever pg-boss throws when the database cannot be reached
 */
export async function startTaskQueue(options: TaskQueueOptions): Promise<TaskQueue> {
  const { logger } = options;
  const retryLimit = options.retryLimit ?? 3;
  const retryDelay = options.retryDelaySeconds ?? 5;
  const pollingIntervalSeconds = options.pollingIntervalSeconds ?? 0.5;
  const boss = new PgBoss({
    connectionString: options.connectionString,
    application_name: 'tally-queue',
    max: options.poolMax ?? 4,
    schedule: false, // no cron jobs: the ledger sweeper runs in tally.ts
    supervise: true,
    maintenanceIntervalSeconds: options.maintenanceIntervalSeconds ?? Math.max(5, Math.min(60, Math.floor(options.expireInSeconds / 2))),
  });
  boss.on('error', (err) => logger.error({ err }, 'pg-boss error'));
  await boss.start();
  const policy = { retryLimit, retryDelay, retryBackoff: true, expireInSeconds: options.expireInSeconds };
  await boss.createQueue(OCR_DEAD_LETTER_QUEUE, { name: OCR_DEAD_LETTER_QUEUE, retryLimit: 5, retryDelay: 5, retryBackoff: true, expireInSeconds: 300 });
  await boss.createQueue(OCR_QUEUE, { name: OCR_QUEUE, ...policy, deadLetter: OCR_DEAD_LETTER_QUEUE });
  // createQueue keeps an existing queue's settings: bring them in line with this configuration
  await boss.updateQueue(OCR_QUEUE, { name: OCR_QUEUE, ...policy, deadLetter: OCR_DEAD_LETTER_QUEUE });

  let stopped = false;
  const localWorkerIds = new Set<string>();
  const localWakers = new Set<() => void>();
  const wakeLocalWorkers = () => {
    for (const id of localWorkerIds) boss.notifyWorker(id);
    for (const wake of localWakers) wake();
  };
  return {
    boss,
    pollingIntervalSeconds,
    leaseSeconds: options.expireInSeconds,
    localWorkerIds,
    localWakers,
    async enqueue(job, trx) {
      await boss.send(OCR_QUEUE, job, { id: job.jobId, ...policy, deadLetter: OCR_DEAD_LETTER_QUEUE, ...(trx ? { db: await pgBossDbOf(trx) } : {}) });
      // in a transaction, the job is visible only once it commits (a rollback wakes no one)
      if (trx) void trx.executionPromise.then(wakeLocalWorkers, () => undefined);
      else wakeLocalWorkers();
    },
    async cancel(job) {
      await boss.cancel(OCR_QUEUE, job.jobId);
    },
    async stop(timeoutMs = 20_000) {
      if (stopped) return;
      stopped = true;
      await boss.stop({ graceful: true, timeout: timeoutMs, wait: true });
    },
  };
}
