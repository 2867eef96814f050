import { parseArgs } from 'node:util';
import { loadConfigOrExit } from '../lifecycle.ts';
import { migrateLatest, openDatabase } from '../db/database.ts';
import { ValidationError } from '../http/errors.ts';
import { createLogger } from '../logger.ts';
import { ensureAdmin } from '../auth/ensure-admin.ts';

/**
 * `npm run admin:create -- --email you@example.com --password '…' [--name 'Ada']`: creates an admin
 * account, or promotes an existing user to admin (their password is kept). The password may also
 * come from `ADMIN_PASSWORD` (keeps it out of the shell history). Uses the running embedded database
 * when there is one (or `DATABASE_URL`), and applies pending migrations first.
 */
async function main(): Promise<number> {
  const { values } = parseArgs({
    options: { email: { type: 'string' }, password: { type: 'string' }, name: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
    strict: true,
  });
  const usage = 'Usage: npm run admin:create -- --email <email> --password <password> [--name <name>]';
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const config = loadConfigOrExit();
  const email = values.email ?? config.admin?.email;
  const password = values.password ?? config.admin?.password ?? process.env.ADMIN_PASSWORD;
  if (!email || !password) {
    console.error(usage);
    return 2;
  }
  const logger = createLogger(config.logLevel === 'info' ? 'warn' : config.logLevel);
  const database = await openDatabase(config, logger, { attach: true });
  try {
    await migrateLatest(database.db);
    const { user, outcome } = await ensureAdmin(database.db, { email, password, name: values.name });
    const said = { created: 'Created admin', promoted: 'Promoted to admin', unchanged: 'Already an admin' }[outcome];
    console.log(`${said}: ${user.email} (${user.id})`);
    return 0;
  } catch (err) {
    if (err instanceof ValidationError) {
      console.error(`Cannot create the admin:\n${err.errors.map((e) => `  - ${e.field}: ${e.message}`).join('\n')}`);
      return 1;
    }
    throw err;
  } finally {
    await database.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err);
    process.exit(1);
  },
);
