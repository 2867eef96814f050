/**
 * Group commit. Operations on one account are serialized by the database (the account row lock), so
 * a hot account runs one transaction at a time, each waiting for its own WAL flush; and on a small
 * machine, many accounts' one-operation transactions spend more on commits and round trips than on
 * the operations. Here, per process and per key: the first operation goes at once; the ones that
 * arrive while it is in flight wait and then go together, as one batch applied in ONE transaction
 * (`ledger_batch`), each with its own outcome. The queues are a few lanes that run side by side;
 * the ledger's keys are accounts, and an account with operations queued or in flight stays in its
 * lane, so its operations stay in order; the others share whatever lane is least busy. Across
 * processes nothing changes: each batch still takes its accounts' locks, so the database
 * serializes them as it did operations.
 *
 * - A refusal (402, 409, …) is an outcome of its item only: the database functions return refusals
 *   as values, so the others in the batch commit.
 * - An unexpected error (one the functions raise) fails the batch's transaction; its items are then
 *   applied one by one, so only the item that fails fails.
 * - Identical operations in one batch (same id and parameters, e.g. a retried request) are applied
 *   once; every caller gets the outcome, later ones marked `replayed` where the result has that flag.
 * - An outcome the batch marks deferred (`isDeferred`: its account was locked elsewhere, nothing was
 *   applied) is applied again on its own, without holding up the queue behind that lock.
 */

export interface GroupCommitOptions<Op, Outcome> {
  /** Applies one operation in its own transaction. */
  applyOne(op: Op): Promise<Outcome>;
  /** Applies operations in one transaction, one outcome each, in order. */
  applyMany(ops: Op[]): Promise<Outcome[]>;
  /** Most operations per transaction. Default 100. */
  maxBatch?: number;
  /**
   * Queues with one transaction in flight each (default 1). A key keeps its lane while it has
   * operations queued or in flight (so its operations stay in order, in one queue); a key with
   * none joins the least busy lane.
   */
  lanes?: number;
  /** True for an outcome of `applyMany` that applied nothing (see above); such an item goes to `applyOne`. */
  isDeferred?(outcome: Outcome): boolean;
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

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

interface Lane<Op, Outcome> {
  queue: Array<Waiting<Op, Outcome>>;
  /** Items taken from the queue and not yet delivered. */
  inFlight: number;
  draining: boolean;
}

export function createGroupCommit<Op, Outcome>(options: GroupCommitOptions<Op, Outcome>): GroupCommit<Op, Outcome> {
  const maxBatch = options.maxBatch ?? 100;
  const lanes: Array<Lane<Op, Outcome>> = Array.from({ length: Math.max(1, Math.floor(options.lanes ?? 1)) }, () => ({ queue: [], inFlight: 0, draining: false }));
  /** The lane of each key with operations queued or in flight, and how many it has (0: its last ones were just delivered). */
  const keys = new Map<string, { lane: Lane<Op, Outcome>; pending: number }>();

  const settle = (p: Promise<Outcome>): Promise<Settled<Outcome>> =>
    p.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );

  async function drain(lane: Lane<Op, Outcome>): Promise<void> {
    lane.draining = true;
    const { queue } = lane;
    while (queue.length > 0) {
      const items = queue.splice(0, maxBatch);
      lane.inFlight = items.length;
      const groups = new Map<string, Array<Waiting<Op, Outcome>>>();
      for (const item of items) {
        const id = JSON.stringify(item.op);
        const group = groups.get(id);
        if (group) group.push(item);
        else groups.set(id, [item]);
      }
      const distinct = [...groups.values()];
      const ops = distinct.map((g) => g[0]!.op);
      let outcomes: Array<Settled<Outcome>>;
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
      const deliver = (group: Array<Waiting<Op, Outcome>>, outcome: Settled<Outcome>) =>
        group.forEach((item, n) => {
          if (!outcome.ok) return item.reject(outcome.error);
          item.resolve(n > 0 ? markReplayed(outcome.value) : outcome.value);
        });
      distinct.forEach((group, i) => {
        const outcome = outcomes[i]!;
        if (outcome.ok && options.isDeferred?.(outcome.value)) {
          void settle(options.applyOne(group[0]!.op)).then((o) => deliver(group, o));
        } else {
          deliver(group, outcome);
        }
      });
      lane.inFlight = 0;
      // Callers whose outcome was just delivered often send their next operation at once: wait one
      // turn of the event loop so they join the next batch, instead of leapfrogging the callers
      // already waiting into batches of their own (half the batch size, twice the commits).
      await new Promise((resolve) => setImmediate(resolve));
      // Only now do keys with nothing left here leave the lane: a hot account's callers, sending
      // again in that turn, stay together instead of splitting over two lanes (and their locks).
      for (const [key, k] of keys) if (k.lane === lane && k.pending === 0) keys.delete(key);
    }
    lane.draining = false;
  }

  /** A key's lane: the one it already uses while it has operations there, else the least busy. */
  function laneFor(key: string) {
    let k = keys.get(key);
    if (!k) {
      const load = (l: Lane<Op, Outcome>) => l.queue.length + l.inFlight + (l.draining ? 1 : 0);
      const lane = lanes.reduce((best, l) => (load(l) < load(best) ? l : best));
      k = { lane, pending: 0 };
      keys.set(key, k);
    }
    return k;
  }

  return {
    submit(key, op) {
      const k = laneFor(key);
      k.pending++;
      const done = () => {
        k.pending--;
        if (k.pending === 0 && !k.lane.draining) keys.delete(key);
      };
      return new Promise<Outcome>((resolve, reject) => {
        k.lane.queue.push({
          op,
          resolve: (o) => {
            done();
            resolve(o);
          },
          reject: (e) => {
            done();
            reject(e);
          },
        });
        if (!k.lane.draining) void drain(k.lane);
      });
    },
    get busyKeys() {
      return keys.size;
    },
  };
}

function markReplayed<Outcome>(value: Outcome): Outcome {
  if (value && typeof value === 'object' && 'replayed' in value && (value as { replayed: unknown }).replayed === false) {
    return { ...value, replayed: true };
  }
  return value;
}
