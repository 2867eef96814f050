import express from 'express';
import { createApiKeysRouter } from '../api-keys/api-keys-router.ts';
import type { Feature } from '../feature.ts';
import type { Services } from '../services.ts';
import { createTeamsPages } from './teams-pages.ts';
import { createTeamsRouter } from './teams-router.ts';

/** Teams (`/api/teams…`, `/teams…`) and API keys (`/api/keys…`, `/account/keys`). */
export function createTeamsFeature(services: Services): Feature {
  const { teams, ledger, apiKeys, payments } = services;
  const api = express.Router();
  api.use(createTeamsRouter({ teams, ledger }));
  api.use(createApiKeysRouter({ apiKeys }));
  return { api, pages: createTeamsPages({ teams, ledger, apiKeys, payments }) };
}
