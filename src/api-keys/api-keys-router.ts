import express from 'express';
import { z } from 'zod';
import { requestContext } from '../auth/audit-log.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { validate } from '../http/validate.ts';
import { apiRoute } from '../http/api-routes.ts';
import { ApiKeyCreatedResponse, ApiKeysResponse } from '../teams/teams-responses.ts';
import { creditsToMillicredits, millicreditsToCredits } from '../ledger/credits.ts';
import { CreateApiKeyBody, type ApiKey, type ApiKeys } from './api-keys-service.ts';

/** A key as the API lists it (never the secret). Credits, not millicredits. */
export function apiKeyJson(k: ApiKey) {
  return {
    id: k.id,
    name: k.name,
    prefix: k.prefix,
    team: k.teamId ? { id: k.teamId, name: k.teamName } : null,
    scopes: k.scopes,
    monthlyCreditLimit: k.monthlyCreditLimit === null ? null : millicreditsToCredits(k.monthlyCreditLimit),
    rateLimitPerMinute: k.rateLimitPerMinute,
    createdAt: k.createdAt,
    lastUsedAt: k.lastUsedAt,
    revokedAt: k.revokedAt,
    spentThisMonth: millicreditsToCredits(k.spentThisMonth),
  };
}

/**
 * `POST /api/keys` → 201 `{key, secret}` (the secret shown once), `GET /api/keys`,
 * `DELETE /api/keys/:id` → 204. Signed-in sessions only: a key cannot manage keys.
 */
export function createApiKeysRouter(deps: { apiKeys: ApiKeys }): express.Router {
  const api = express.Router();
  apiRoute(api, { method: 'post', path: '/keys', summary: 'Create an API key (its secret is shown only here)', tags: ['keys'], auth: 'user', request: { body: CreateApiKeyBody }, responses: { 201: ApiKeyCreatedResponse } }, requireAuth, async (req, res) => {
    const body = validate(CreateApiKeyBody, req);
    const { key, secret } = await deps.apiKeys.create(
      req.user!.id,
      { ...body, monthlyCreditLimit: body.monthlyCreditLimit === undefined ? undefined : creditsToMillicredits(body.monthlyCreditLimit, { allowZero: true }) },
      requestContext(req),
    );
    res.status(201).json({ key: apiKeyJson(key), secret });
  });
  apiRoute(api, { method: 'get', path: '/keys', summary: 'Your API keys (never their secrets)', tags: ['keys'], auth: 'user', responses: { 200: ApiKeysResponse } }, requireAuth, async (req, res) => {
    res.json({ keys: (await deps.apiKeys.list(req.user!.id)).map(apiKeyJson) });
  });
  apiRoute(api, { method: 'delete', path: '/keys/:id', summary: 'Revoke an API key', tags: ['keys'], auth: 'user', request: { params: z.object({ id: z.uuid() }) }, responses: { 204: { description: 'Revoked.' } } }, requireAuth, async (req, res) => {
    const { id } = validate(z.object({ id: z.uuid() }).strict(), req, 'params');
    await deps.apiKeys.revoke(req.user!.id, id, requestContext(req));
    res.status(204).end();
  });
  return api;
}
