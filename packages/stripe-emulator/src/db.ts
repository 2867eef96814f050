import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Knex } from 'knex';

export type Db = Knex;
export type Trx = Knex.Transaction;

/**
 * The PostgreSQL schema that holds every table of the emulator. The host application's own schema
 * (`public`) holds none of them: the emulator is development tooling, not production state.
 */
export const SCHEMA = 'stripe_emulator';

const MIGRATIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../migrations');

/** Imports this package's migrations/ files (TypeScript, loaded by the caller's loader: tsx or vitest). */
class EmulatorMigrationSource implements Knex.MigrationSource<string> {
  async getMigrations(): Promise<string[]> {
    return fs
      .readdirSync(MIGRATIONS_DIR)
      .filter((f) => /^\d{14}_[\w-]+\.ts$/.test(f))
      .sort();
  }
  getMigrationName(file: string): string {
    return file;
  }
  async getMigration(file: string): Promise<Knex.Migration> {
    return (await import(pathToFileURL(path.join(MIGRATIONS_DIR, file)).href)) as Knex.Migration;
  }
}

/** Knex migrator settings of the emulator: its own migrations, tracked in `stripe_emulator.knex_migrations`. */
export const emulatorMigrationConfig: Knex.MigratorConfig = {
  migrationSource: new EmulatorMigrationSource(),
  schemaName: SCHEMA,
  tableName: 'knex_migrations',
};

/**
 * Creates the `stripe_emulator` schema when missing and applies the emulator's pending migrations.
 * Independent of the host application's migrations (they never touch this schema).
 * @returns the names of the migrations applied.
 */
export async function migrateStripeEmulator(db: Db): Promise<string[]> {
  try {
    await db.raw('CREATE SCHEMA IF NOT EXISTS ??', [SCHEMA]);
  } catch (err) {
    // Two processes creating the schema at the same moment: the loser sees a unique violation.
    if ((err as { code?: string }).code !== '23505') throw err;
  }
  const [, applied] = (await db.migrate.latest(emulatorMigrationConfig)) as [number, string[]];
  return applied;
}

/** Rolls back every emulator migration and drops the (then empty) schema. */
export async function rollbackStripeEmulator(db: Db): Promise<string[]> {
  const [, rolled] = (await db.migrate.rollback(emulatorMigrationConfig, true)) as [number, string[]];
  await db.raw('DROP SCHEMA IF EXISTS ?? CASCADE', [SCHEMA]);
  return rolled;
}

/**
 * Runs `fn` in a transaction, or inside `trxOrDb` when it already is one. Retries the whole
 * function on serialization failure or deadlock (SQLSTATE 40001 / 40P01), as PostgreSQL advises.
 */
export async function inTransaction<T>(trxOrDb: Db | Trx, fn: (trx: Trx) => Promise<T>, retries = 3): Promise<T> {
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
