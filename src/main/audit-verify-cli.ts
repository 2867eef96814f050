import { sealAuditRows, verifyAuditChain } from '../auth/audit-store.ts';
import { runCheckCli } from './check-cli.ts';

/**
 * `npm run audit:verify`: seals what is waiting, then walks the audit log's hash chain from its
 * anchor to its head (`DATABASE_URL`, or the embedded server of a running `npm start`).
 * Exits 0 when every entry matches its hash and links to the one before, 1 naming the first
 * broken entry, 2 when it cannot check.
 */
runCheckCli('audit verify', async (db) => {
  await sealAuditRows(db);
  const r = await verifyAuditChain(db);
  if (r.ok) {
    const erased = r.erasedPersonal > 0 ? `; ${r.erasedPersonal} with personal data erased` : '';
    console.log(`audit verify: ok (${r.checked} entries, seq ${Number(r.anchorSeq) + 1}–${r.headSeq}, anchor ${r.anchorSeq}${erased})`);
    return 0;
  }
  const b = r.firstBreak!;
  console.error(`audit verify: broken at entry seq ${b.seq} (id ${b.id}): ${b.problem}`);
  console.error(`  ${r.checked} entries before it verified`);
  return 1;
});
