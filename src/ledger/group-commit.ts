/**
 * Group commit. Operations on one account are serialized by the database (the account row lock), so
 * a hot account runs one transaction at a time, each waiting for its own WAL flush; and on a small
 * machine, many accounts' one-operation transactions spend more on commits and round trips than on
 * the operations. Here, per process: the first operation goes at once; the ones that arrive while
 * it is in flight wait and then go together, as one batch applied in ONE transaction
 * (`ledger_batch`), each with its own outcome. The queues are a few lanes that run side by side;
 * the ledger's keys are accounts, and an account with operations queued or in flight stays in its
 * lane, so its operations stay in order; the others share whatever lane is least busy. Across
 * processes nothing changes: each batch still takes its accounts' locks, so the database
 * serializes them as it did operations.
 *
 * - A refusal (402, 409, …) is an outcome of its item only: the database functions return refusals
 *   as values, so the others in the batch commit.
 * - Identical operations in one batch (same id and parameters, e.g. a retried request) are applied
 *   once; every caller gets the outcome, later ones marked `replayed` where the result has that flag.
 * - With `isDeferred`, a lane never waits long for a lock. A batch of several keys waits for none
 *   (`'never'`): an operation whose account is locked elsewhere comes back deferred, applied nothing.
 *   A batch of one key waits a few milliseconds at most (`'briefly'`), then fails. Either way the key
 *   moves to a queue of its own (its operations in order, one transaction in flight, batched,
 *   waiting for the lock as usual: `'until-free'`) until that queue is empty, and the lanes go on
 *   with the other keys. Any other error of a lane's batch moves its items to their keys' own
 *   queues the same way. A key's items still waiting in its lane follow it there at once, so its
 *   order holds. At most two own queues per lane apply at a time (each may hold a connection while
 *   it waits for a lock).
 * - In a key's own queue (and in every queue without `isDeferred`), an unexpected error fails the
 *   batch's transaction; its items are then applied one by one, so only the item that fails fails.
 */

/**
 * How long a batch may wait for a lock: `'until-free'` (a key's own queue), `'briefly'` (a lane's
 * batch of one key: a few milliseconds, then it fails), `'never'` (a lane's batch of several keys:
 * an operation whose lock is taken elsewhere comes back deferred).
 */
export type LockWait = 'until-free' | 'briefly' | 'never';

export interface GroupCommitOptions<Op, Outcome> {
  /** Applies one operation in its own transaction, waiting for its locks. */
  applyOne(op: Op): Promise<Outcome>;
  /** Applies operations in one transaction, one outcome each, in order, waiting for locks as `wait` says. */
  applyMany(ops: Op[], wait: LockWait): Promise<Outcome[]>;
  /** Most operations per transaction. Default 100. */
  maxBatch?: number;
  /**
   * Queues with one transaction in flight each (default 1). A key keeps its lane while it has
   * operations queued or in flight (so its operations stay in order, in one queue); a key with
   * none joins the least busy lane.
   */
  lanes?: number;
  /** True for an outcome of `applyMany(ops, 'never')` that applied nothing (its lock is held elsewhere). */
  isDeferred?(outcome: Outcome): boolean;
}

type Settled<T> = { ok: true; value: T } | { ok: false; error: unknown };

interface Waiting<Op, Outcome> {
  key: string;
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

interface Queue<Op, Outcome> {
  items: Array<Waiting<Op, Outcome>>;
  /** Items taken from the queue and not yet delivered. */
  inFlight: number;
  draining: boolean;
}

const newQueue = <Op, Outcome>(): Queue<Op, Outcome> => ({ items: [], inFlight: 0, draining: false });

export function createGroupCommit<Op, Outcome>(options: GroupCommitOptions<Op, Outcome>): GroupCommit<Op, Outcome> {
  const maxBatch = options.maxBatch ?? 100;
  const { isDeferred } = options;
  const lanes = Array.from({ length: Math.max(1, Math.floor(options.lanes ?? 1)) }, () => newQueue<Op, Outcome>());
  /** The lane of each key with operations queued or in flight, and how many it has (0: its last ones were just delivered). */
  const keys = new Map<string, { lane: Queue<Op, Outcome>; pending: number }>();
  /** The own queues of keys whose account was busy elsewhere (or whose lane batch failed). */
  const own = new Map<string, Queue<Op, Outcome>>();

  const settle = (p: Promise<Outcome>): Promise<Settled<Outcome>> =>
    p.then(
      (value) => ({ ok: true as const, value }),
      (error: unknown) => ({ ok: false as const, error }),
    );

  const deliver = (group: Array<Waiting<Op, Outcome>>, outcome: Settled<Outcome>) =>
    group.forEach((item, n) => {
      if (!outcome.ok) return item.reject(outcome.error);
      item.resolve(n > 0 ? markReplayed(outcome.value) : outcome.value);
    });

  /**
   * Moves `items` (in order) to their key's own queue. When the queue is new, the key's later items
   * still waiting in its lane follow them, before anything else can reach that queue: the key's
   * operations stay in order.
   */
  function toOwnQueue(key: string, items: Array<Waiting<Op, Outcome>>) {
    let q = own.get(key);
    if (!q) {
      q = newQueue();
      own.set(key, q);
      q.items.push(...items);
      const lane = keys.get(key)?.lane;
      if (lane && lane.items.some((item) => item.key === key)) {
        q.items.push(...lane.items.filter((item) => item.key === key));
        lane.items = lane.items.filter((item) => item.key !== key);
      }
    } else {
      q.items.push(...items);
    }
    if (!q.draining) void drain(q, key);
  }

  /** Moves the groups of a lane's batch (in batch order) to their keys' own queues, each key's at once. */
  function moveToOwnQueues(groups: Array<Array<Waiting<Op, Outcome>>>) {
    const byKey = new Map<string, Array<Waiting<Op, Outcome>>>();
    for (const group of groups) {
      const key = group[0]!.key;
      const items = byKey.get(key);
      if (items) items.push(...group);
      else byKey.set(key, [...group]);
    }
    for (const [key, items] of byKey) toOwnQueue(key, items);
  }

  /** At most this many own queues apply at once (each holds a connection while it waits for a lock). */
  const ownSlots = { free: Math.max(2, 2 * lanes.length), waiting: [] as Array<() => void> };
  const takeSlot = () => (ownSlots.free > 0 ? (ownSlots.free--, Promise.resolve()) : new Promise<void>((r) => ownSlots.waiting.push(r)));
  const giveSlot = () => {
    const next = ownSlots.waiting.shift();
    if (next) next();
    else ownSlots.free++;
  };

  /** Applies one batch; `waitFor`: the key whose own queue this is (its lock may be waited for). */
  async function apply(items: Array<Waiting<Op, Outcome>>, waitFor: string | undefined): Promise<void> {
    const groups = new Map<string, Array<Waiting<Op, Outcome>>>();
    for (const item of items) {
      const id = JSON.stringify(item.op);
      const group = groups.get(id);
      if (group) group.push(item);
      else groups.set(id, [item]);
    }
    const distinct = [...groups.values()];
    const ops = distinct.map((g) => g[0]!.op);
    if (isDeferred && waitFor === undefined) {
      let outcomes: Outcome[];
      const oneKey = items.every((item) => item.key === items[0]!.key);
      try {
        outcomes = await options.applyMany(ops, oneKey ? 'briefly' : 'never');
      } catch {
        moveToOwnQueues(distinct);
        return;
      }
      const deferred: typeof distinct = [];
      distinct.forEach((group, i) => (isDeferred(outcomes[i]!) ? deferred.push(group) : deliver(group, { ok: true, value: outcomes[i]! })));
      moveToOwnQueues(deferred);
      return;
    }
    let outcomes: Array<Settled<Outcome>>;
    if (ops.length === 1) {
      outcomes = [await settle(options.applyOne(ops[0]!))];
    } else {
      try {
        outcomes = (await options.applyMany(ops, 'until-free')).map((value) => ({ ok: true as const, value }));
      } catch {
        outcomes = [];
        for (const op of ops) outcomes.push(await settle(options.applyOne(op)));
      }
    }
    distinct.forEach((group, i) => deliver(group, outcomes[i]!));
  }

  async function drain(queue: Queue<Op, Outcome>, ownKey?: string): Promise<void> {
    queue.draining = true;
    while (queue.items.length > 0) {
      const items = queue.items.splice(0, maxBatch);
      queue.inFlight = items.length;
      if (ownKey !== undefined) await takeSlot();
      try {
        await apply(items, ownKey);
      } finally {
        if (ownKey !== undefined) giveSlot();
      }
      queue.inFlight = 0;
      // Callers whose outcome was just delivered often send their next operation at once: wait one
      // turn of the event loop so they join the next batch, instead of leapfrogging the callers
      // already waiting into batches of their own (half the batch size, twice the commits).
      await new Promise((resolve) => setImmediate(resolve));
      // Only now do keys with nothing left here leave the lane: a hot account's callers, sending
      // again in that turn, stay together instead of splitting over two lanes (and their locks).
      if (ownKey === undefined) for (const [key, k] of keys) if (k.lane === queue && k.pending === 0) keys.delete(key);
    }
    queue.draining = false;
    if (ownKey !== undefined) own.delete(ownKey);
  }

  /** A key's lane: the one it already uses while it has operations there, else the least busy. */
  function laneFor(key: string) {
    let k = keys.get(key);
    if (!k) {
      const load = (l: Queue<Op, Outcome>) => l.items.length + l.inFlight + (l.draining ? 1 : 0);
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
        const item: Waiting<Op, Outcome> = {
          key,
          op,
          resolve: (o) => {
            done();
            resolve(o);
          },
          reject: (e) => {
            done();
            reject(e);
          },
        };
        if (own.has(key)) return toOwnQueue(key, [item]);
        k.lane.items.push(item);
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
