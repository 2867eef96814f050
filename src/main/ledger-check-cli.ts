import { checkBooks } from '../ledger/ledger-check-store.ts';
import { runCheckCli } from './check-cli.ts';

/**
 * `npm run ledger:check`: verifies every ledger invariant against the live database
 * (`DATABASE_URL`, or the embedded server of a running `npm start` found through `DATA_DIR`).
 * Exits 0 when the books balance, 1 listing each violation otherwise, 2 when it cannot check.
 */
runCheckCli('ledger check', async (db, config) => {
  const violations = await checkBooks(db, { sweepIntervalMs: config.sweepIntervalMs });
  const counts = await db.raw(`SELECT (SELECT count(*) FROM transfers) AS transfers, (SELECT count(*) FROM lots) AS lots, (SELECT count(*) FROM holds) AS holds`);
  const c = counts.rows[0] as { transfers: number; lots: number; holds: number };
  if (violations.length === 0) {
    console.log(`ledger check: ok (${c.transfers} transfers, ${c.lots} lots, ${c.holds} holds; every invariant holds)`);
    return 0;
  }
  console.error(`ledger check: ${violations.length} violation(s)`);
  for (const v of violations) console.error(`  - [${v.invariant}] ${v.detail}`);
  return 1;
});
