import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import pg from 'pg';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { embeddedUrl, readRunningEmbeddedPg, startEmbeddedPostgres } from './embedded-postgres.ts';

export type Db = Knex;
export type Trx = Knex.Transaction;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const MIGRATIONS_DIR = path.join(ROOT, 'migrations');
export const SEEDS_DIR = path.join(ROOT, 'seeds');

/**
 * bigint (int8) columns hold millicredits and cents. They are returned as JS numbers, which are
 * exact up to 2^53; a value beyond that would lose precision, so it fails loudly instead.
 */
function parseInt8(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n)) throw new RangeError(`bigint value ${value} exceeds 2^53`);
  return n;
}
pg.types.setTypeParser(pg.types.builtins.INT8, parseInt8);
pg.types.setTypeParser(pg.types.builtins.NUMERIC, (v: string) => v); // never silently to float

/** Creates a Knex instance on a PostgreSQL URL. Pool size `poolMax` connections. */
export function createKnex(url: string, poolMax = 10): Db {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, application_name: 'tally' },
    pool: { min: 0, max: poolMax },
    acquireConnectionTimeout: 30_000,
  });
}

/**
 * Knex migration source that imports migrations/ files through our own module loader, so the
 * TypeScript files work the same under `tsx` (npm start) and under vitest.
 */
class DirectoryMigrationSource implements Knex.MigrationSource<string> {
  constructor(private readonly dir: string) {}
  async getMigrations(): Promise<string[]> {
    return fs
      .readdirSync(this.dir)
      .filter((f) => /^\d{14}_[\w-]+\.ts$/.test(f))
      .sort();
  }
  getMigrationName(file: string): string {
    return file;
  }
  async getMigration(file: string): Promise<Knex.Migration> {
    return (await import(pathToFileURL(path.join(this.dir, file)).href)) as Knex.Migration;
  }
}

const SEED_SOURCE: Knex.SeedSource<string> = {
  async getSeeds() {
    return fs
      .readdirSync(SEEDS_DIR)
      .filter((f) => f.endsWith('.ts'))
      .sort();
  },
  async getSeed(file: string) {
    return (await import(pathToFileURL(path.join(SEEDS_DIR, file)).href)) as Knex.Seed;
  },
};

export const migrationConfig: Knex.MigratorConfig = {
  migrationSource: new DirectoryMigrationSource(MIGRATIONS_DIR),
  tableName: 'knex_migrations',
};

/** Applies every pending migration. Returns the names applied. */
export async function migrateLatest(db: Db): Promise<string[]> {
  const [, applied] = (await db.migrate.latest(migrationConfig)) as [number, string[]];
  return applied;
}

/** Rolls back the last batch of migrations (`all` = every batch). Returns the names rolled back. */
export async function migrateRollback(db: Db, all = false): Promise<string[]> {
  const [, rolled] = (await db.migrate.rollback(migrationConfig, all)) as [number, string[]];
  return rolled;
}

/** Runs the reference-data seeds (idempotent upserts; they never touch user data). */
export async function runSeeds(db: Db): Promise<void> {
  await db.seed.run({ seedSource: SEED_SOURCE });
}

/** True when the database answers and no migration is pending (for `/readyz`). */
export async function isReady(db: Db): Promise<{ ok: boolean; pending?: number; error?: string }> {
  try {
    await db.raw('SELECT 1');
    const [, pending] = (await db.migrate.list(migrationConfig)) as [unknown[], unknown[]];
    return pending.length === 0 ? { ok: true } : { ok: false, pending: pending.length };
  } catch (err) {
    return { ok: false, error: (err as Error).message };
  }
}

/** A process that must attach to a running `npm start` (a separate worker) found none. */
export class NoRunningServerError extends Error {
  constructor(dataDir: string) {
    super(
      `No running Tally owns the embedded PostgreSQL of ${dataDir}. Start the app (npm start) first, ` +
        'or set DATABASE_URL; a supervisor restarting this worker will find it once the app is up.',
    );
    this.name = 'NoRunningServerError';
  }
}

export interface DatabaseHandle {
  db: Db;
  url: string;
  /** Port of the embedded server in use (modes `embedded` and `attached`). */
  embeddedPort?: number;
  /** `embedded` when this process started its own server. */
  mode: 'external' | 'embedded' | 'attached';
  close(): Promise<void>;
}

/**
 * Opens the database the config points to: `DATABASE_URL` when set, otherwise the embedded server.
 * With `attach`, a server already run by another Tally process on the same data dir is used
 * (operator tools); otherwise this process starts and owns one.
 */
export async function openDatabase(
  config: Pick<Config, 'databaseUrl' | 'dataDir' | 'embeddedPgPort' | 'dbPoolMax'>,
  logger: Logger,
  options: { attach?: boolean; attachOnly?: boolean } = {},
): Promise<DatabaseHandle> {
  if (config.databaseUrl) {
    const db = createKnex(config.databaseUrl, config.dbPoolMax);
    return { db, url: config.databaseUrl, mode: 'external', close: () => db.destroy() };
  }
  if (options.attach) {
    const running = readRunningEmbeddedPg(config.dataDir);
    if (running) {
      const url = embeddedUrl(running);
      const db = createKnex(url, config.dbPoolMax);
      return { db, url, mode: 'attached', embeddedPort: running.port, close: () => db.destroy() };
    }
    if (options.attachOnly) throw new NoRunningServerError(config.dataDir);
  }
  const server = await startEmbeddedPostgres({ dataDir: config.dataDir, port: config.embeddedPgPort, logger });
  const db = createKnex(server.url, config.dbPoolMax);
  return {
    db,
    url: server.url,
    mode: 'embedded',
    embeddedPort: server.info.port,
    async close() {
      await db.destroy();
      await server.stop();
    },
  };
}

/**
 * Runs `fn` in a transaction; when `trxOrDb` already is one, reuses it instead of nesting.
 * Retries the whole function on serialization failure or deadlock (SQLSTATE 40001 / 40P01),
 * up to `retries` times, as PostgreSQL's docs advise for those errors.
 */
export async function inTransaction<T>(trxOrDb: Db | Trx, fn: (trx: Trx) => Promise<T>, retries = 5): Promise<T> {
  if ((trxOrDb as Trx).isTransaction) return fn(trxOrDb as Trx);
  for (let attempt = 0; ; attempt++) {
    try {
      return await (trxOrDb as Db).transaction(fn);
    } catch (err) {
      const code = (err as { code?: string }).code;
      if ((code === '40001' || code === '40P01') && attempt < retries) continue;
      throw err;
    }
  }
}

/**
 * Runs one statement as a named (prepared) statement on a pooled connection, outside any
 * transaction (autocommit), and returns its rows. For hot paths: PostgreSQL parses and plans a
 * named statement once per connection, where Knex's unnamed statements are planned on every call.
 * `name` must be unique per distinct `text`.
 */
export async function queryNamed<R = Record<string, unknown>>(db: Db, name: string, text: string, values: unknown[]): Promise<R[]> {
  const conn = (await db.client.acquireConnection()) as pg.Client;
  try {
    const { rows } = await conn.query<R & pg.QueryResultRow>({ name, text, values });
    return rows;
  } finally {
    await db.client.releaseConnection(conn);
  }
}

/** True for a PostgreSQL unique-violation error (SQLSTATE 23505), optionally on one constraint. */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = err as { code?: string; constraint?: string };
  return e?.code === '23505' && (constraint === undefined || e.constraint === constraint);
}
