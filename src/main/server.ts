import { createLogger } from '../logger.ts';
import { DataDirInUseError } from '../db/embedded-postgres.ts';
import { loadConfigOrExit, stopOnSignals } from '../lifecycle.ts';
import { startTally } from '../tally.ts';

/** Entry point of `npm start`: config → database → migrate → app + worker → graceful shutdown. */
async function main() {
  const config = loadConfigOrExit();
  const logger = createLogger(config.logLevel);
  let tally;
  try {
    tally = await startTally(config, logger);
  } catch (err) {
    if (err instanceof DataDirInUseError) logger.fatal(err.message);
    else logger.fatal({ err }, 'Tally could not start');
    await new Promise((r) => setTimeout(r, 100)); // let the log line flush
    process.exit(1);
  }
  stopOnSignals(() => tally.stop(), logger);
}

void main();
