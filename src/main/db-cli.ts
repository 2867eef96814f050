import { ConfigError, loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { migrateLatest, migrateRollback, openDatabase, runSeeds } from '../db/database.ts';

/**
 * `npm run db:migrate | db:rollback [-- --all] | db:seed`: operator commands against `DATABASE_URL`,
 * or the embedded server of a running `npm start` (found through `DATA_DIR`), or a temporary one.
 */
async function main() {
  const command = process.argv[2];
  if (!['migrate', 'rollback', 'seed'].includes(command ?? '')) {
    console.error('usage: db-cli migrate | rollback [--all] | seed');
    process.exit(2);
  }
  const config = loadConfig();
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const database = await openDatabase(config, logger, { attach: true });
  try {
    if (command === 'migrate') {
      const applied = await migrateLatest(database.db);
      console.log(applied.length ? `applied: ${applied.join(', ')}` : 'already up to date');
    } else if (command === 'rollback') {
      const rolled = await migrateRollback(database.db, process.argv.includes('--all'));
      console.log(rolled.length ? `rolled back: ${rolled.join(', ')}` : 'nothing to roll back');
    } else {
      await runSeeds(database.db);
      console.log('seeds applied');
    }
  } finally {
    await database.close();
  }
}

main().catch((err) => {
  console.error(err instanceof ConfigError ? err.message : err);
  process.exit(1);
});
