import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createKnex, migrateLatest, runSeeds, type Db } from '../src/db/database.ts';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts';
import { benchLedger } from './ledger-bench.ts';

/**
 * `npm run bench`: prints throughput figures measured in this run, on an embedded PostgreSQL in a
 * temp dir (default durability settings) or on BENCH_DATABASE_URL. Figures, not pass/fail.
 *   BENCH_SECONDS (default 3) per measurement; BENCH_ONLY=ledger|tasks to run one part.
 */
async function main() {
  const seconds = Number(process.env.BENCH_SECONDS ?? 3);
  const only = process.env.BENCH_ONLY;
  let url = process.env.BENCH_DATABASE_URL;
  let stop = async () => {};
  let tmp: string | undefined;
  if (!url) {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-bench-'));
    fs.chmodSync(tmp, 0o755);
    const server = await startEmbeddedPostgres({ dataDir: tmp, database: 'tally_bench', ephemeral: true });
    url = server.url;
    stop = () => server.stop();
  }
  const db = createKnex(url, 40);
  try {
    await migrateLatest(db);
    await runSeeds(db);
    console.log(`Tally bench — ${os.cpus().length} cores, node ${process.version}, ${seconds}s per figure`);
    if (!only || only === 'ledger') {
      console.log('\nLedger: reserve + post (one hold, posted in full) vs a plain single-row UPDATE transaction');
      await benchLedger(db, { seconds, clientCounts: [1, 8, 32] });
    }
    if (!only || only === 'tasks') {
      const { benchTasks } = (await import('./tasks-bench.ts')) as { benchTasks?: (db: Db, url: string) => Promise<void> };
      if (benchTasks) {
        console.log('\nTasks: a 6-page scanned PDF through Tally vs the Tesseract command line, same pages, same run');
        await benchTasks(db, url);
      }
    }
  } finally {
    await db.destroy();
    await stop();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
