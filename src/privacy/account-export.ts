import { PassThrough } from 'node:stream';
import { ZipArchive } from 'archiver';
import type { AuditRecord } from '../auth/audit-log.ts';
import { StoredFileMissingError, type FileStorage } from '../tasks/file-storage.ts';

/** What goes into one export ZIP: the user's rows by file, their audit entries, and their tasks' files. */
export interface ExportContents {
  data: Record<string, unknown>;
  audit: AuditRecord[];
  generatedAt: Date;
}

const README = (generatedAt: Date, missing: string[]) => `Your Tally data, exported ${generatedAt.toISOString()} (GDPR Art. 15, right of access).

Each .json file holds one kind of record, as Tally stores it. Amounts of credits are millicredits
(1 credit = 1000); amounts of money are minor units of their currency (cents).

  profile.json                 your account
  sessions.json                signed-in sessions that have not ended
  notification-settings.json   which emails you get
  transfers.json               every credit movement of your account (the ledger)
  lots.json                    every grant of credits and what remains of it
  holds.json                   credits reserved for jobs
  payments.json, refunds.json  your purchases and their refunds
  subscriptions.json           your plans
  tasks.json                   every task; its text is in results/, your original file in files/
  balance-alerts.json, low-balance-thresholds.json, notifications.json, emails.json
  webhook-endpoints.json       (signing secrets left out)
  team-memberships.json, api-keys.json   when you have them (API key secrets are never exported)
  audit.json                   the audit log's entries by or about you
${missing.length ? `\nFiles no longer kept (past their retention time, or deleted):\n${missing.map((m) => `  ${m}`).join('\n')}\n` : ''}`;

/** A file name safe inside a ZIP: no directories, no control characters, at most 100 characters. */
function safeName(name: string): string {
  const cleaned = name.replace(/[\\/\u0000-\u001f]/g, '_').replace(/^\.+/, '_').trim();
  return (cleaned || 'file').slice(-100);
}

/**
 * Builds the export ZIP in memory (archiver, deflate): one JSON file per kind of record, the
 * audit entries, `results/<task>.txt` with each task's text, and `files/` with each original
 * upload still kept. Files already deleted are listed in README.txt. Returns the ZIP's bytes.
 */
export async function buildExportZip(contents: ExportContents, storage: FileStorage): Promise<Buffer> {
  const archive = new ZipArchive({ zlib: { level: 6 } });
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  const done = new Promise<void>((resolve, reject) => {
    out.on('end', resolve);
    archive.on('error', reject);
    archive.on('warning', reject);
  });
  archive.pipe(out);

  const json = (v: unknown) => `${JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? x.toString() : x), 2)}\n`;
  const missing: string[] = [];
  const tasks = (contents.data.tasks ?? []) as Array<Record<string, unknown>>;
  for (const [file, rows] of Object.entries(contents.data)) {
    if (file === 'tasks') {
      archive.append(json(tasks.map(({ result_text: _t, storage_key: _s, result_key: _r, searchable_pdf_key: _p, ...rest }) => rest)), { name: 'tasks.json' });
    } else archive.append(json(rows), { name: `${file}.json` });
  }
  archive.append(json(contents.audit), { name: 'audit.json' });

  for (const t of tasks) {
    const id = String(t.id);
    const stem = `${new Date(t.created_at as string | Date).toISOString().slice(0, 10)}-${id.slice(0, 8)}-${safeName(String(t.file_name))}`;
    if (typeof t.result_text === 'string') archive.append(t.result_text, { name: `results/${stem}.txt` });
    else if (t.status === 'completed') missing.push(`results/${stem}.txt`);
    for (const [key, name] of [
      [t.storage_key, `files/${stem}`],
      [t.result_key, `results/${stem}.json`],
    ] as const) {
      if (typeof key !== 'string' || t.file_deleted_at && name.startsWith('files/')) {
        if (name.startsWith('files/')) missing.push(name);
        continue;
      }
      try {
        archive.append(await storage.read(key), { name });
      } catch (err) {
        if (!(err instanceof StoredFileMissingError)) throw err;
        missing.push(name);
      }
    }
  }
  archive.append(README(contents.generatedAt, missing), { name: 'README.txt' });
  await archive.finalize();
  await done;
  return Buffer.concat(chunks);
}
