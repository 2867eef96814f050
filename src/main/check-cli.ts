import { ConfigError, loadConfig, type Config } from '../config.ts';
import { openDatabase, type Db } from '../db/database.ts';
import { createLogger } from '../logger.ts';

/**
 * Runs a checking command (`npm run ledger:check`, `npm run audit:verify`) against the live
 * database (`DATABASE_URL`, or the embedded server of a running `npm start` found through
 * `DATA_DIR`) and exits with what `check` returns: 0 all good, 1 something is wrong (it has said
 * what). Exits 2, with `<name> could not run: …` (or the configuration error), when it cannot check.
 */
export function runCheckCli(name: string, check: (db: Db, config: Readonly<Config>) => Promise<0 | 1>): void {
  const main = async () => {
    const config = loadConfig();
    const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
    const database = await openDatabase(config, logger, { attach: true });
    try {
      return await check(database.db, config);
    } finally {
      await database.close();
    }
  };
  main().then(
    (code) => process.exit(code),
    (err) => {
      console.error(err instanceof ConfigError ? err.message : `${name} could not run: ${(err as Error).message}`);
      process.exit(2);
    },
  );
}
