import { startEmbeddedPostgres } from '../../src/db/embedded-postgres.ts';

/**
 * A process that owns an embedded PostgreSQL and does nothing else (for tests that kill it):
 * `node --import tsx test/helpers/embedded-pg-child.ts <dataDir>` prints one JSON line
 * `{port, clusterDir}` when the server is ready, then waits to be killed.
 */
const handle = await startEmbeddedPostgres({ dataDir: process.argv[2]!, settings: { fsync: 'off' } });
process.stdout.write(`${JSON.stringify({ port: handle.info.port, clusterDir: handle.clusterDir })}\n`);
setInterval(() => undefined, 60_000);
