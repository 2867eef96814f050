import { ConfigError, loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { openDatabase } from '../db/database.ts';
import { checkBooks } from '../ledger/ledger-check-store.ts';

/**
 * `npm run ledger:check`: verifies every ledger invariant against the live database
 * (`DATABASE_URL`, or the embedded server of a running `npm start` found through `DATA_DIR`).
 * Exits 0 when the books balance, 1 listing each violation otherwise, 2 when it cannot check.
 */
async function main() {
  const config = loadConfig();
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const database = await openDatabase(config, logger, { attach: true });
  try {
    const violations = await checkBooks(database.db, { sweepIntervalMs: config.sweepIntervalMs });
    const counts = await database.db.raw(
      `SELECT (SELECT count(*) FROM transfers) AS transfers, (SELECT count(*) FROM lots) AS lots, (SELECT count(*) FROM holds) AS holds`,
    );
    const c = counts.rows[0] as { transfers: number; lots: number; holds: number };
    if (violations.length === 0) {
      console.log(`ledger check: ok (${c.transfers} transfers, ${c.lots} lots, ${c.holds} holds; every invariant holds)`);
      return 0;
    }
    console.error(`ledger check: ${violations.length} violation(s)`);
    for (const v of violations) console.error(`  - [${v.invariant}] ${v.detail}`);
    return 1;
  } finally {
    await database.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ConfigError ? err.message : `ledger check could not run: ${(err as Error).message}`);
    process.exit(2);
  },
);
