import express from 'express';
import { requireAuth } from '../auth/auth-middleware.ts';
import type { Db } from '../db/database.ts';
import { NotFoundError } from '../http/errors.ts';
import { apiRoute } from '../http/api-routes.ts';
import { validate } from '../http/validate.ts';
import { BalanceJson, TransferJson, TransfersPage } from './credits-responses.ts';
import { z } from 'zod';
import type { Ledger } from '../ledger/ledger-service.ts';
import { balanceJson, transferJson } from './credits-json.ts';
import { streamTransfersCsv } from './transfers-csv.ts';
import { TransferIdParams, TransfersQuery } from './transfers-schemas.ts';
import { findStatementEntry } from './transfers-store.ts';
import '../api-keys/api-key-auth.ts';

/**
 * The signed-in user's own credits: `GET /api/credits/balance`, `GET /api/credits/transfers`
 * (JSON pages, or `?format=csv` for every matching row) and `GET /api/credits/transfers/:id`.
 * Only ever the caller's account: another user's transfer id is a 404. A team API key reads its
 * team's pool (balance and history) instead. Each transfer names the API key (`apiKey: {name,
 * prefix}`) whose hold it settled, or null: usage by key.
 */
export function createBalanceRouter(deps: {
  db: Db;
  ledger: Ledger;
  /** Usage by key: which API key placed each hold (src/api-keys). */
  keysOfHolds?: (holdIds: string[]) => Promise<Map<string, { name: string; prefix: string }>>;
}): express.Router {
  const { db, ledger } = deps;
  const api = express.Router();

  apiRoute(api, { method: 'get', path: '/credits/balance', summary: 'Your balance (or, with a team API key, the team pool): available, held, debt, lots and holds, read in one snapshot', auth: 'user', responses: { 200: BalanceJson } }, requireAuth, async (req, res) => {
    res.json(balanceJson(await ledger.getBalance(req.apiKey?.teamId ?? req.user!.id)));
  });

  apiRoute(
    api,
    {
      method: 'get',
      path: '/credits/transfers',
      summary: 'Your history, newest first, with the balance after each entry; `format=csv` downloads all of it',
      auth: 'user',
      request: { query: TransfersQuery },
      responses: { 200: { description: 'A page of transfers (JSON), or every matching transfer as CSV.', schema: TransfersPage } },
    },
    requireAuth,
    async (req, res) => {
    const q = validate(TransfersQuery, req, 'query');
    const filters = { kind: q.kind, from: q.from, to: q.to };
    if (q.format === 'csv') {
      // The whole matching history: `limit` and `cursor` do not apply to the export.
      await streamTransfersCsv(res, ledger, req.apiKey?.teamId ?? req.user!.id, filters);
      return;
    }
    const page = await ledger.listTransfers(req.apiKey?.teamId ?? req.user!.id, filters, { limit: q.limit, cursor: q.cursor });
    const keys = deps.keysOfHolds ? await deps.keysOfHolds(page.items.flatMap((e) => (e.holdId ? [e.holdId] : []))) : new Map();
    res.json({
      transfers: page.items.map((e) => ({ ...transferJson(e), apiKey: (e.holdId && keys.get(e.holdId)) || null })),
      nextCursor: page.nextCursor,
    });
    },
  );

  apiRoute(api, { method: 'get', path: '/credits/transfers/:id', summary: 'One entry of your history', auth: 'user', request: { params: TransferIdParams }, responses: { 200: z.object({ transfer: TransferJson }) } }, requireAuth, async (req, res) => {
    const { id } = validate(TransferIdParams, req, 'params');
    const entry = await findStatementEntry(db, req.user!.id, id);
    if (!entry) throw new NotFoundError('transfer');
    const keys = entry.holdId && deps.keysOfHolds ? await deps.keysOfHolds([entry.holdId]) : new Map();
    res.json({ transfer: { ...transferJson(entry), apiKey: (entry.holdId && keys.get(entry.holdId)) || null } });
  });

  return api;
}
