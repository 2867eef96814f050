import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import express, { type Express } from 'express';
import { z } from 'zod';
import { apiRoute, buildOpenApiDocument, type OpenApiDocument } from './api-routes.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The docs page: Swagger UI from node_modules (/static/swagger-ui), started by /static/api-docs.js. */
const DOCS_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Tally API documentation</title>
<link rel="icon" href="/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/swagger-ui/swagger-ui.css">
<link rel="stylesheet" href="/static/api-docs.css">
</head>
<body>
<div id="swagger-ui"></div>
<noscript><p>This page needs JavaScript. The OpenAPI document itself is at <a href="/api/openapi.json">/api/openapi.json</a>.</p></noscript>
<script src="/static/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/api-docs.js"></script>
</body>
</html>
`;

/**
 * `GET /api/openapi.json` (the OpenAPI 3.1 document, built on first request from the routes
 * mounted on `app()`) and `GET /api/docs` (Swagger UI, served offline). Mounted under `/api`.
 */
export function createApiDocsRouter(app: () => Express, options: { keyScope?: (method: string, path: string) => string | undefined } = {}): express.Router {
  const router = express.Router();
  let document: OpenApiDocument | undefined;
  const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

  apiRoute(
    router,
    {
      method: 'get',
      path: '/openapi.json',
      summary: 'This document: the OpenAPI 3.1 description of the API',
      tags: ['docs'],
      auth: 'none',
      responses: { 200: z.object({ openapi: z.string(), info: z.object({ title: z.string(), version: z.string() }), paths: z.record(z.string(), z.unknown()) }).loose() },
    },
    (_req, res) => {
      document ??= buildOpenApiDocument(app(), { version, keyScope: options.keyScope });
      res.set('Cache-Control', 'no-cache').json(document);
    },
  );
  apiRoute(
    router,
    { method: 'get', path: '/docs', summary: 'Interactive API documentation (Swagger UI)', tags: ['docs'], auth: 'none', responses: { 200: { description: 'An HTML page.', contentType: 'text/html' } } },
    (_req, res) => {
      // Swagger UI sets style attributes on its elements; allow those (no inline scripts) on this page only.
      const csp = String(res.getHeader('Content-Security-Policy') ?? '').replace(/style-src 'self'/, "style-src 'self' 'unsafe-inline'");
      if (csp) res.setHeader('Content-Security-Policy', csp);
      res.type('html').send(DOCS_PAGE);
    },
  );
  return router;
}
