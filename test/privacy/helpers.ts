import crypto from 'node:crypto';
import yauzl from 'yauzl';
import type { Services } from '../../src/compose.ts';
import { newStorageKey } from '../../src/tasks/file-storage.ts';

/** Every entry of a ZIP (yauzl), by name → bytes. */
export function readZip(bytes: Buffer): Promise<Map<string, Buffer>> {
  return new Promise((resolve, reject) => {
    yauzl.fromBuffer(bytes, { lazyEntries: true }, (err, zip) => {
      if (err || !zip) return reject(err);
      const out = new Map<string, Buffer>();
      zip.on('entry', (entry: yauzl.Entry) => {
        zip.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e);
          const chunks: Buffer[] = [];
          stream.on('data', (c: Buffer) => chunks.push(c));
          stream.on('end', () => {
            out.set(entry.fileName, Buffer.concat(chunks));
            zip.readEntry();
          });
        });
      });
      zip.on('end', () => resolve(out));
      zip.on('error', reject);
      zip.readEntry();
    });
  });
}

/**
 * A finished OCR task of `userId` with its original file in storage and its result text, as the
 * worker leaves it (the ledger side is not needed for what these tests check).
 */
export async function finishedTask(deps: Services, userId: string, opts: { fileName?: string; text?: string; createdAt?: Date; bytes?: Buffer } = {}) {
  const id = crypto.randomUUID();
  const key = newStorageKey();
  const bytes = opts.bytes ?? Buffer.from(`%PNG fake image ${id}`);
  await deps.storage.put(key, bytes);
  const resultKey = newStorageKey();
  await deps.storage.put(resultKey, Buffer.from(JSON.stringify({ pages: [{ text: opts.text ?? 'hello' }] })));
  const createdAt = opts.createdAt ?? new Date();
  await deps.db('tasks').insert({
    id,
    user_id: userId,
    status: 'completed',
    file_name: opts.fileName ?? 'scan.png',
    kind: 'png',
    mime_type: 'image/png',
    size_bytes: bytes.length,
    sha256: crypto.createHash('sha256').update(bytes).digest('hex'),
    storage_key: key,
    result_key: resultKey,
    pages: 1,
    pages_done: 1,
    estimated_millicredits: 1500,
    charged_millicredits: 1500,
    hold_id: `task:${id}`,
    job_id: crypto.randomUUID(),
    result_text: opts.text ?? 'hello',
    created_at: createdAt,
    completed_at: createdAt,
  });
  return { id, key, resultKey, bytes };
}
