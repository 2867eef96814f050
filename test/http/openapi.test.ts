import express from 'express';
import request from 'supertest';
import { z } from 'zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { apiRoute, listMountedRoutes, openApiPath } from '../../src/http/api-routes.ts';
import { checkResponsesAgainstOpenApi, takeResponseViolations } from '../helpers/openapi-responses.ts';
import { buildTestApp, type TestApp } from '../helpers/app.ts';

let ta: TestApp;
let doc: { openapi: string; paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Record<string, unknown> }> }; responses: Record<string, unknown> }>>; components: Record<string, unknown> };

beforeAll(async () => {
  ta = await buildTestApp();
  doc = (await request(ta.app).get('/api/openapi.json').expect(200).expect('Content-Type', /application\/json/)).body;
});
afterAll(async () => {
  await ta.close();
});

describe('the OpenAPI document (/api/openapi.json)', () => {
  it('has every API route the app mounts (method and path)', () => {
    const mounted = listMountedRoutes(ta.app).filter((r) => r.path.startsWith('/api/'));
    expect(mounted.length).toBeGreaterThan(50);
    const missing = mounted.filter((r) => !doc.paths[openApiPath(r.path)]?.[r.method]);
    const hint = [
      `${missing.length} API route(s) are mounted but missing from /api/openapi.json:`,
      ...missing.map((r) => `  ${r.method.toUpperCase()} ${r.path}`),
      'Declare each with apiRoute (src/http/api-routes.ts) instead of router.get/post/…, giving the zod schemas it validates with, e.g.',
      "  apiRoute(api, { method: 'get', path: '/credits/usage', summary: '…', auth: 'user', request: { query: UsageQuery }, responses: { 200: UsageResponse } }, requireAuth, handler);",
      'Response schemas live beside the feature (src/<feature>/<feature>-responses.ts); API tests check responses against them.',
    ].join('\n');
    expect(missing, hint).toEqual([]);
  });

  it('is OpenAPI 3.1 whose schemas all compile, generated from the zod schemas that validate requests', () => {
    expect(doc.openapi).toBe('3.1.0');
    const ajv = new Ajv2020({ strict: false });
    addFormats.default(ajv);
    ajv.addSchema(doc, 'doc');
    let compiled = 0;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        for (const [status, response] of Object.entries(op.responses as Record<string, { content?: Record<string, { schema?: unknown }> }>)) {
          for (const [type, media] of Object.entries(response.content ?? {})) {
            if (!media.schema) continue;
            const ptr = ['paths', path, method, 'responses', status, 'content', type, 'schema'].map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
            expect(() => ajv.compile({ $ref: `doc#/${ptr}` }), `${method} ${path} ${status} ${type}`).not.toThrow();
            compiled++;
          }
        }
      }
    }
    expect(compiled).toBeGreaterThan(50);
    // SignupBody (src/auth/auth-schemas.ts) is strict: unknown fields refused, and the document says so.
    const signup = doc.paths['/api/auth/signup']!.post!.requestBody!.content['application/json']!.schema;
    expect(signup).toMatchObject({ type: 'object', required: ['email', 'password', 'name'], additionalProperties: false });
    // Path parameters use OpenAPI's syntax; errors are problem+json.
    expect(doc.paths['/api/tasks/{id}']?.get?.responses).toHaveProperty('default');
    expect(doc.paths['/api/payments/webhook']?.post).toBeTruthy();
    // Routes an API key may call say so, with the scope; the others are for sessions only.
    expect((doc.paths['/api/tasks']?.post as { security?: unknown }).security).toEqual([{ session: [] }, { apiKey: ['tasks:write'] }]);
    expect((doc.paths['/api/credits/balance']?.get as { security?: unknown }).security).toEqual([{ session: [] }, { apiKey: ['credits:read'] }]);
    expect((doc.paths['/api/keys']?.post as { security?: unknown }).security).toEqual([{ session: [] }]);
  });

  it('is served with /api/docs, a Swagger UI page that works offline under the CSP', async () => {
    const page = await request(ta.app).get('/api/docs').expect(200).expect('Content-Type', /text\/html/);
    expect(page.text).toMatch(/<html lang="en">/);
    expect(page.text).toMatch(/<title>Tally API documentation<\/title>/);
    expect(page.text).not.toMatch(/<script>(?!<)/); // no inline script: the initializer is a file
    const csp = page.headers['content-security-policy'] as string;
    expect(csp).toMatch(/script-src 'self'(;|$)/);
    for (const asset of [...page.text.matchAll(/(?:src|href)="(\/static\/[^"]+)"/g)].map((m) => m[1]!)) {
      await request(ta.app).get(asset).expect(200);
    }
  });
});

describe('the response check of the API tests (test/helpers/openapi-responses.ts)', () => {
  it('records a JSON response that does not match its documented schema, or whose status is not documented', async () => {
    const api = express.Router();
    apiRoute(api, { method: 'get', path: '/things/:id', summary: 'A thing', auth: 'none', responses: { 200: z.object({ id: z.string(), count: z.number().int() }) } }, (req, res) => {
      if (req.params.id === 'good') res.json({ id: 'good', count: 2 });
      else if (req.params.id === 'created') res.status(201).json({ id: 'created', count: 1 });
      else res.json({ id: req.params.id, count: 'many' });
    });
    const app = express();
    app.use('/api', api);
    checkResponsesAgainstOpenApi(app);
    await request(app).get('/api/things/good').expect(200);
    expect(takeResponseViolations()).toEqual([]);
    await request(app).get('/api/things/bad').expect(200);
    await request(app).get('/api/things/created').expect(201);
    const found = takeResponseViolations();
    expect(found).toEqual([
      expect.objectContaining({ request: 'GET /api/things/bad', status: 200, problem: expect.stringMatching(/\/count must be integer/) }),
      expect.objectContaining({ request: 'GET /api/things/created', status: 201, problem: expect.stringMatching(/status 201 is not documented/) }),
    ]);
  });
});
