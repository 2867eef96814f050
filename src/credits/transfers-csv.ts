import { contentDisposition } from '../http/content-disposition.ts';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Response } from 'express';
import { stringify } from 'csv-stringify';
import { millicreditsToCredits } from '../ledger/credits.ts';
import type { Ledger } from '../ledger/ledger-service.ts';
import type { StatementFilters } from '../ledger/ledger-store.ts';

/** Rows fetched per query while streaming. */
const PAGE = 500;

/** `2026-11-21 09:30:05` (UTC): a form every spreadsheet reads as a date-time. */
function spreadsheetTime(d: Date): string {
  return d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '');
}

/**
 * Streams all of `userId`'s transfers that match `filters` as CSV (newest first), page by page
 * through the keyset cursor, so memory stays flat however long the history. Header row; credits
 * as plain signed decimals (`-2.5`); UTF-8 with a BOM so spreadsheets read names correctly; text
 * that starts like a formula is escaped (OWASP CSV Injection). Sets Content-Type and an attachment
 * Content-Disposition; `filename` defaults to `tally-transfers-<date>.csv`.
 */
export async function streamTransfersCsv(
  res: Response,
  ledger: Ledger,
  userId: string,
  filters: StatementFilters,
  options: { filename?: string; withActor?: boolean } = {},
): Promise<void> {
  const filename = options.filename ?? `tally-transfers-${new Date().toISOString().slice(0, 10)}.csv`;
  res.status(200);
  res.setHeader('Content-Type', 'text/csv; charset=utf-8');
  res.setHeader('Content-Disposition', contentDisposition('attachment', filename.replace(/[^\w.-]/g, '_')));
  res.setHeader('Cache-Control', 'private, no-store');

  async function* rows() {
    let cursor: string | null = null;
    do {
      const page = await ledger.listTransfers(userId, filters, { limit: PAGE, cursor });
      for (const e of page.items) {
        yield {
          date_utc: spreadsheetTime(e.createdAt),
          transfer_id: e.id,
          kind: e.kind,
          credits: millicreditsToCredits(e.amount),
          balance_after: e.balanceAfter === null ? null : millicreditsToCredits(e.balanceAfter),
          reason: e.reason ?? '',
          reference: e.reference ? `${e.reference.type}:${e.reference.id}` : '',
          ...(options.withActor ? { actor: e.actor } : {}),
        };
      }
      cursor = page.nextCursor;
    } while (cursor);
  }

  const columns = ['date_utc', 'transfer_id', 'kind', 'credits', 'balance_after', 'reason', 'reference', ...(options.withActor ? ['actor'] : [])];
  await pipeline(Readable.from(rows()), stringify({ header: true, columns, bom: true, escape_formulas: true }), res);
}
