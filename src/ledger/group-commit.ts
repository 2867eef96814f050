/**
 * Group commit for hot accounts. Operations on one account are serialized by the database (the
 * account row lock), so a hot account runs one transaction at a time, each waiting for its own WAL
 * flush. Here, per process and per key (the account's user): the first operation goes at once; the
 * ones that arrive while it is in flight wait and then go together, as one batch applied in ONE
 * transaction (`ledger_batch`), each with its own outcome. Across processes nothing changes: each
 * batch still takes the account lock, so the database serializes batches as it did operations.
 *
 * - A refusal (402, 409, …) is an outcome of its item only: the database functions return refusals
 *   as values, so the others in the batch commit.
 * - An unexpected error (one the functions raise) fails the batch's transaction; its items are then
 *   applied one by one, so only the item that fails fails.
 * - Identical operations in one batch (same id and parameters, e.g. a retried request) are applied
 *   once; every caller gets the outcome, later ones marked `replayed` where the result has that flag.
 */

export interface GroupCommitOptions<Op, Outcome> {
  /** Applies one operation in its own transaction. */
  applyOne(op: Op): Promise<Outcome>;
  /** Applies operations in one transaction, one outcome each, in order. */
  applyMany(ops: Op[]): Promise<Outcome[]>;
  /** Most operations per transaction. Default 100. */
  maxBatch?: number;
}

interface Waiting<Op, Outcome> {
  op: Op;
  resolve(outcome: Outcome): void;
  reject(err: unknown): void;
}

export interface GroupCommit<Op, Outcome> {
  /** Queues `op` behind the operations in flight for `key`; resolves with its own outcome. */
  submit(key: string, op: Op): Promise<Outcome>;
  /** Keys with operations queued or in flight (for tests and metrics). */
  readonly busyKeys: number;
}

export function createGroupCommit<Op, Outcome>(options: GroupCommitOptions<Op, Outcome>): GroupCommit<Op, Outcome> {
  const maxBatch = options.maxBatch ?? 100;
  const queues = new Map<string, Array<Waiting<Op, Outcome>>>();

  const settle = (p: Promise<Outcome>) =>
    p.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );

  async function drain(key: string, queue: Array<Waiting<Op, Outcome>>): Promise<void> {
    while (queue.length > 0) {
      const items = queue.splice(0, maxBatch);
      const groups = new Map<string, Array<Waiting<Op, Outcome>>>();
      for (const item of items) {
        const id = JSON.stringify(item.op);
        const group = groups.get(id);
        if (group) group.push(item);
        else groups.set(id, [item]);
      }
      const distinct = [...groups.values()];
      const ops = distinct.map((g) => g[0]!.op);
      let outcomes: Array<{ ok: true; value: Outcome } | { ok: false; error: unknown }>;
      if (ops.length === 1) {
        outcomes = [await settle(options.applyOne(ops[0]!))];
      } else {
        try {
          outcomes = (await options.applyMany(ops)).map((value) => ({ ok: true as const, value }));
        } catch {
          outcomes = [];
          for (const op of ops) outcomes.push(await settle(options.applyOne(op)));
        }
      }
      distinct.forEach((group, i) => {
        const outcome = outcomes[i]!;
        group.forEach((item, n) => {
          if (!outcome.ok) return item.reject(outcome.error);
          item.resolve(n > 0 ? markReplayed(outcome.value) : outcome.value);
        });
      });
      // Callers whose outcome was just delivered often send their next operation at once: wait one
      // turn of the event loop so they join the next batch, instead of leapfrogging the callers
      // already waiting into batches of their own (half the batch size, twice the commits).
      await new Promise((resolve) => setImmediate(resolve));
    }
    queues.delete(key);
  }

  return {
    submit(key, op) {
      return new Promise<Outcome>((resolve, reject) => {
        let queue = queues.get(key);
        const idle = !queue;
        if (!queue) {
          queue = [];
          queues.set(key, queue);
        }
        queue.push({ op, resolve, reject });
        if (idle) void drain(key, queue);
      });
    },
    get busyKeys() {
      return queues.size;
    },
  };
}

function markReplayed<Outcome>(value: Outcome): Outcome {
  if (value && typeof value === 'object' && 'replayed' in value && (value as { replayed: unknown }).replayed === false) {
    return { ...value, replayed: true };
  }
  return value;
}
