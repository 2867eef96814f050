import { ConfigError, loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { DataDirInUseError } from './db/embedded-postgres.ts';
import { startTally } from './tally.ts';

/** Entry point of `npm start`: config → database → migrate → app + worker → graceful shutdown. */
async function main() {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel);
  let tally;
  try {
    tally = await startTally(config, logger);
  } catch (err) {
    if (err instanceof DataDirInUseError) {
      logger.fatal(err.message);
    } else {
      logger.fatal({ err }, 'Tally could not start');
    }
    await new Promise((r) => setTimeout(r, 100)); // let the log line flush
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    stopping = true;
    logger.info({ signal }, 'shutting down');
    const force = setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, 30_000);
    force.unref();
    tally.stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

void main();
