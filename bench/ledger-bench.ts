import crypto from 'node:crypto';
import pg from 'pg';
import { createKnex, type Db } from '../src/db/database.ts';
import { createLedger, type Ledger } from '../src/ledger/ledger-service.ts';

/** One measured figure: the ledger's rate next to its baseline's, same clients, same run. */
export interface Figure {
  name: string;
  rate: number;
  baseline: number;
  unit: string;
  baselineName: string;
}

/** Prints `ratio NAME = X.XX` (the line the bar reads) with the absolute rates beside it. */
export function printFigure(f: Figure): void {
  console.log(`ratio ${f.name} = ${(f.rate / f.baseline).toFixed(2)}   (${f.rate.toFixed(0)} ${f.unit}; ${f.baselineName} ${f.baseline.toFixed(0)}/s)`);
}

/**
 * Runs `op(client)` from `clients` concurrent clients in a closed loop for `ms` (or until `op`
 * returns false: nothing left to do); returns completed operations and the time taken.
 */
export async function closedLoop(clients: number, ms: number, op: (client: number) => Promise<boolean | void>): Promise<{ done: number; ms: number }> {
  const deadline = performance.now() + ms;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < deadline) {
        if ((await op(c)) === false) return;
        done++;
      }
    }),
  );
  return { done, ms: performance.now() - start };
}

/**
 * Measures several workloads interleaved: `rounds` rounds, each running every workload in turn for
 * `totalMs / rounds`. A figure and its baseline thus see the same machine (this one is shared, its
 * load drifts). Returns each workload's rate per second over all its slices.
 */
export async function interleaved(
  clients: number,
  totalMs: number,
  workloads: Array<(client: number) => Promise<boolean | void>>,
  rounds = 4,
): Promise<number[]> {
  const totals = workloads.map(() => ({ done: 0, ms: 0 }));
  for (let r = 0; r < rounds; r++) {
    for (const [i, w] of workloads.entries()) {
      const { done, ms } = await closedLoop(clients, totalMs / rounds, w);
      totals[i]!.done += done;
      totals[i]!.ms += ms;
    }
  }
  return totals.map((t) => (t.ms > 0 ? t.done / (t.ms / 1000) : 0));
}

async function newUser(db: Db, ledger: Ledger): Promise<string> {
  const [u] = await db('users').insert({ email: `bench-${crypto.randomUUID()}@example.test`, name: 'bench', password_hash: 'x' }).returning('id');
  const id = (u as { id: string }).id;
  await ledger.grant({ transferId: `bench-fund-${id}`, userId: id, millicredits: 1e12, kind: 'bonus', actor: 'bench' });
  return id;
}

/**
 * The ledger figures (issue 11), each next to the simplest write transaction PostgreSQL can do,
 * measured in the same run with the same clients: Knex `BEGIN; UPDATE one row; COMMIT`.
 * - `reserve@8`, `post@8`: 8 clients, each on its own account (uncontended; group commit on, as in
 *   the app, so operations of accounts that arrive together share a transaction), vs 8 clients each
 *   updating its own row. Reserve: 1-credit holds; post: such holds, in full (from a stock reserved
 *   beforehand, untimed, so posting never waits for reserving). The three workloads run
 *   interleaved (see {@link interleaved}), `seconds` each in all.
 * - `reserve-hot@N`, `post-hot@N`: N clients on ONE account (group commit on, as in the app), vs
 *   N clients updating ONE row.
 * Then the share of lots/accounts/holds updates that were HOT (pg_stat_user_tables).
 */
export async function benchLedger(url: string, options: { seconds: number }): Promise<Figure[]> {
  const ms = options.seconds * 1000;
  const db = createKnex(url, 40);
  const figures: Figure[] = [];
  try {
    const ledger = createLedger(db);
    await db.raw('CREATE TABLE IF NOT EXISTS bench_counters (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0)');
    await db.raw('INSERT INTO bench_counters (id) SELECT g FROM generate_series(0, 64) g ON CONFLICT DO NOTHING');
    const update = (row: (c: number) => number) => async (c: number) => {
      await db.transaction(async (trx) => {
        await trx.raw('UPDATE bench_counters SET n = n + 1 WHERE id = ?', [row(c)]);
      });
    };
    const reserveThenPost = async (clients: number, userFor: (c: number) => string, suffix: string, rowFor: (c: number) => number) => {
      const holds: string[][] = Array.from({ length: clients }, () => []);
      const reserveOne = async (c: number) => {
        const hold = await ledger.reserve({ holdId: `b-${crypto.randomUUID()}`, userId: userFor(c), millicredits: 1000, timeoutMs: 3_600_000, actor: 'bench' });
        holds[c]!.push(hold.id);
      };
      // Untimed stock of holds, so that posting never runs dry between reserve slices.
      const stock = Math.ceil((1500 * options.seconds) / clients);
      await Promise.all(Array.from({ length: clients }, async (_, c) => {
        while (holds[c]!.length < stock) await reserveOne(c);
      }));
      const [base, reserve, post] = await interleaved(clients, ms, [
        update(rowFor),
        reserveOne,
        async (c) => {
          const holdId = holds[c]!.pop();
          if (!holdId) return false;
          await ledger.post({ holdId, millicredits: 1000, actor: 'bench' });
        },
      ]);
      const figs: Figure[] = [
        { name: `reserve${suffix}@${clients}`, rate: reserve!, baseline: base!, unit: 'reserves/s', baselineName: 'UPDATE tx' },
        { name: `post${suffix}@${clients}`, rate: post!, baseline: base!, unit: 'posts/s', baselineName: 'UPDATE tx' },
      ];
      figs.forEach(printFigure);
      figures.push(...figs);
    };

    const users: string[] = [];
    for (let i = 0; i < 8; i++) users.push(await newUser(db, ledger));
    const hot = await newUser(db, ledger);
    // Warm-up: plans, caches and pool connections.
    await closedLoop(8, 500, async (c) => {
      const h = await ledger.reserve({ holdId: `w-${crypto.randomUUID()}`, userId: users[c]!, millicredits: 1000, timeoutMs: 60_000, actor: 'bench' });
      await ledger.post({ holdId: h.id, millicredits: 1000, actor: 'bench' });
    });
    await closedLoop(32, 500, update((c) => c));

    await reserveThenPost(8, (c) => users[c]!, '', (c) => c + 1);
    await reserveThenPost(8, () => hot, '-hot', () => 0);
    await reserveThenPost(32, () => hot, '-hot', () => 0);
  } finally {
    await db.destroy(); // backends flush their statistics as they exit
  }
  await hotUpdateShares(url);
  return figures;
}

/** Prints how many updates of the ledger's hot tables were HOT (no index entries written). */
async function hotUpdateShares(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await new Promise((r) => setTimeout(r, 1000));
    const { rows } = await client.query(
      `SELECT relname, n_tup_upd::bigint AS upd, n_tup_hot_upd::bigint AS hot FROM pg_stat_user_tables
        WHERE relname IN ('lots', 'accounts', 'holds') ORDER BY relname`,
    );
    const parts = (rows as Array<{ relname: string; upd: number; hot: number }>).map(
      (r) => `${r.relname} ${r.hot}/${r.upd} (${r.upd > 0 ? ((100 * r.hot) / r.upd).toFixed(1) : '–'}%)`,
    );
    console.log(`HOT updates (pg_stat_user_tables n_tup_hot_upd/n_tup_upd): ${parts.join(', ')}`);
  } finally {
    await client.end();
  }
}
