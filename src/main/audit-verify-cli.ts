import { ConfigError, loadConfig } from '../config.ts';
import { createLogger } from '../logger.ts';
import { openDatabase } from '../db/database.ts';
import { sealAuditRows, verifyAuditChain } from '../auth/audit-store.ts';

/**
 * `npm run audit:verify`: seals what is waiting, then walks the audit log's hash chain from its
 * anchor to its head (`DATABASE_URL`, or the embedded server of a running `npm start`).
 * Exits 0 when every entry matches its hash and links to the one before, 1 naming the first
 * broken entry, 2 when it cannot check.
 */
async function main() {
  const config = loadConfig();
  const logger = createLogger(process.env.LOG_LEVEL ?? 'warn');
  const database = await openDatabase(config, logger, { attach: true });
  try {
    await sealAuditRows(database.db);
    const r = await verifyAuditChain(database.db);
    if (r.ok) {
      const erased = r.erasedPersonal > 0 ? `; ${r.erasedPersonal} with personal data erased` : '';
      console.log(`audit verify: ok (${r.checked} entries, seq ${Number(r.anchorSeq) + 1}–${r.headSeq}, anchor ${r.anchorSeq}${erased})`);
      return 0;
    }
    const b = r.firstBreak!;
    console.error(`audit verify: broken at entry seq ${b.seq} (id ${b.id}): ${b.problem}`);
    console.error(`  ${r.checked} entries before it verified`);
    return 1;
  } finally {
    await database.close();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof ConfigError ? err.message : `audit verify could not run: ${(err as Error).message}`);
    process.exit(2);
  },
);
