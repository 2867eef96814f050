import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { migrateStripeEmulator } from '@tally/stripe-emulator';
import { createKnex, migrateLatest, runSeeds } from '../src/db/database.ts';
import { startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../src/db/embedded-postgres.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    /** URL of the test server's `postgres` database, for CREATE DATABASE … TEMPLATE. */
    pgAdminUrl: string;
    pgTemplate: string;
  }
}

const TEMPLATE = 'tally_template';
let server: EmbeddedPostgresHandle | undefined;
let tmpDir: string | undefined;

/**
 * Starts one PostgreSQL for the whole run (embedded in a temp dir, or TEST_DATABASE_URL), migrates
 * (the application's schema and the Stripe emulator's) and seeds a template database; each test file clones it (see test/helpers/db.ts).
 */
export async function setup(project: TestProject) {
  let adminUrl: string;
  if (process.env.TEST_DATABASE_URL) {
    const u = new URL(process.env.TEST_DATABASE_URL);
    u.pathname = '/postgres';
    adminUrl = u.toString();
  } else {
    tmpDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tally-test-'));
    fs.chmodSync(tmpDir, 0o755);
    server = await startEmbeddedPostgres({
      dataDir: tmpDir,
      database: 'postgres',
      ephemeral: true,
      settings: { fsync: 'off', synchronous_commit: 'off', full_page_writes: 'off', max_connections: '400' },
    });
    adminUrl = server.url;
  }
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${TEMPLATE}`);
  await admin.query(`CREATE DATABASE ${TEMPLATE}`);
  await admin.end();
  const templateUrl = new URL(adminUrl);
  templateUrl.pathname = `/${TEMPLATE}`;
  const db = createKnex(templateUrl.toString(), 2);
  await migrateLatest(db);
  await migrateStripeEmulator(db); // its own schema, beside the application's
  await runSeeds(db);
  await db.destroy();
  project.provide('pgAdminUrl', adminUrl);
  project.provide('pgTemplate', TEMPLATE);
}

export async function teardown() {
  await server?.stop();
  if (tmpDir) fs.rmSync(tmpDir, { recursive: true, force: true });
}
