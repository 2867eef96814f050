import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createKnex, migrateLatest, runSeeds, type Db } from '../src/db/database.ts';
import { startEmbeddedPostgres } from '../src/db/embedded-postgres.ts';
import { benchHttp } from './http-bench.ts';
import { benchLedger } from './ledger-bench.ts';

/**
 * `npm run bench`: one run against one PostgreSQL server (embedded, in a temp dir, default
 * durability settings; or BENCH_DATABASE_URL). Prints one line per figure, `ratio NAME = X.XX`,
 * with the absolute rates beside it (see README, "Scaling out"):
 *   reserve@8, post@8, reserve-hot@8, post-hot@8, reserve-hot@32, post-hot@32 (ledger vs a plain
 *   single-row UPDATE transaction), priced-http@8 and auth-http@8 (vs the same app's /healthz).
 * BENCH_SECONDS (default 3) per measurement. BENCH_ONLY=ledger|http|insight|tasks runs one part (insight: p50/p95
 * of the usage, stats, statement and admin revenue endpoints over 1,000,000 seeded transfers); the OCR
 * comparison (tasks: Tally vs the Tesseract command line, a few minutes on 2 cores) runs last,
 * unless BENCH_TASKS=off.
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
  const db = createKnex(url, 5);
  try {
    await migrateLatest(db);
    await runSeeds(db);
    console.log(`Tally bench — ${os.cpus().length} cores, node ${process.version}, ${seconds}s per figure`);
    if (!only || only === 'ledger') {
      console.log('\nLedger (one PL/pgSQL function per operation; group commit in 2 lanes) vs BEGIN; UPDATE one row; COMMIT');
      await benchLedger(url, { seconds });
    }
    if (!only || only === 'http') {
      console.log('\nHTTP, 8 keep-alive connections, one app process (npm start, BENCH_ROUTES=on) vs its own /healthz');
      await benchHttp(db, url, { seconds });
    }
    if (!only || only === 'insight') {
      const { benchInsight } = await import('./insight-bench.ts');
      console.log('\nInsight: usage, stats and statements of a heavy user and the admin revenue report, over 1,000,000 seeded transfers (target: user endpoints p95 < 100 ms)');
      await benchInsight(db, url);
    }
    // The OCR comparison takes a few minutes of both cores: BENCH_TASKS=off leaves it out.
    if (only === 'tasks' || (!only && process.env.BENCH_TASKS !== 'off')) {
      const { benchTasks } = await import('./tasks-bench.ts');
      console.log('\nTasks: a 6-page scanned PDF through Tally vs the Tesseract command line, same pages, same run');
      await benchTasks(db, url);
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
