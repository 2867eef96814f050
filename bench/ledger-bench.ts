import crypto from 'node:crypto';
import type { Db } from '../src/db/database.ts';
import { createLedger } from '../src/ledger/ledger-service.ts';

export interface BenchRow {
  mode: 'uncontended' | 'hot account';
  clients: number;
  ledgerOpsPerSec: number;
  updateTxPerSec: number;
}

/** Runs `op(client)` in a closed loop from `clients` concurrent clients for `ms`; returns ops/s. */
async function closedLoop(clients: number, ms: number, op: (client: number) => Promise<void>): Promise<number> {
  const deadline = performance.now() + ms;
  let done = 0;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      while (performance.now() < deadline) {
        await op(c);
        done++;
      }
    }),
  );
  return done / ((performance.now() - start) / 1000);
}

/**
 * reserve + post (one hold, then posting its full amount) per operation, either each client on
 * its own account (uncontended) or all on one account (hot), next to the simplest write
 * transaction PostgreSQL can do: BEGIN; UPDATE one row; COMMIT, on the same rows pattern.
 */
export async function benchLedger(db: Db, options: { seconds: number; clientCounts: number[] }): Promise<BenchRow[]> {
  const ledger = createLedger(db);
  await db.raw('CREATE TABLE IF NOT EXISTS bench_counters (id int PRIMARY KEY, n bigint NOT NULL DEFAULT 0)');
  const maxClients = Math.max(...options.clientCounts);
  await db.raw('INSERT INTO bench_counters (id) SELECT g FROM generate_series(0, ?) g ON CONFLICT DO NOTHING', [maxClients]);
  const users: string[] = [];
  for (let i = 0; i < maxClients; i++) {
    const [u] = await db('users').insert({ email: `bench-${crypto.randomUUID()}@example.test`, name: 'bench', password_hash: 'x' }).returning('id');
    users.push((u as { id: string }).id);
    await ledger.grant({ transferId: `bench-fund-${u.id}`, userId: u.id, millicredits: 1e12, kind: 'bonus', actor: 'bench' });
  }
  const rows: BenchRow[] = [];
  for (const mode of ['uncontended', 'hot account'] as const) {
    for (const clients of options.clientCounts) {
      const userFor = (c: number) => (mode === 'hot account' ? users[0]! : users[c]!);
      const rowFor = (c: number) => (mode === 'hot account' ? 0 : c);
      const ledgerOpsPerSec = await closedLoop(clients, options.seconds * 1000, async (c) => {
        const hold = await ledger.reserve({ holdId: `b-${crypto.randomUUID()}`, userId: userFor(c), millicredits: 1000, timeoutMs: 60_000, actor: 'bench' });
        await ledger.post({ holdId: hold.id, millicredits: 1000, actor: 'bench' });
      });
      const updateTxPerSec = await closedLoop(clients, options.seconds * 1000, async (c) => {
        await db.transaction(async (trx) => {
          await trx.raw('UPDATE bench_counters SET n = n + 1 WHERE id = ?', [rowFor(c)]);
        });
      });
      rows.push({ mode, clients, ledgerOpsPerSec, updateTxPerSec });
      console.log(
        `  ${mode.padEnd(12)} ${String(clients).padStart(3)} clients: reserve+post ${ledgerOpsPerSec.toFixed(0).padStart(6)} ops/s` +
          ` | single-row UPDATE tx ${updateTxPerSec.toFixed(0).padStart(6)} tx/s | ratio ${(updateTxPerSec / ledgerOpsPerSec).toFixed(1)}×`,
      );
    }
  }
  return rows;
}
