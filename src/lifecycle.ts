import { ConfigError, loadConfig, type Config } from './config.ts';
import type { Logger } from './logger.ts';

/**
 * Loads the configuration for a command-line entry point; on an invalid environment prints the
 * list of problems and exits with status 1 (no stack trace: it is the operator's input).
 */
export function loadConfigOrExit(): Readonly<Config> {
  try {
    return loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      console.error(err.message);
      process.exit(1);
    }
    throw err;
  }
}

/**
 * Runs `stop` on the first SIGTERM/SIGINT, then exits 0 (1 if stopping fails). A second signal
 * (more than 1.5 s after the first), or `graceMs` (default 30 s) without finishing, exits at once
 * with status 1. A repeat within 1.5 s is the same Ctrl-C relayed by npm/tsx, not a second request.
 */
export function stopOnSignals(stop: () => Promise<void>, logger: Logger, graceMs = 30_000): void {
  let firstAt: number | undefined;
  const shutdown = (signal: string) => {
    if (firstAt !== undefined) {
      if (Date.now() - firstAt < 1500) return;
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    firstAt = Date.now();
    logger.info({ signal }, 'shutting down');
    setTimeout(() => {
      logger.error('shutdown took too long; exiting');
      process.exit(1);
    }, graceMs).unref();
    stop().then(
      () => {
        logger.info('stopped');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
