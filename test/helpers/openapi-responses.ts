import type { IncomingMessage, ServerResponse } from 'node:http';
import type express from 'express';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { buildOpenApiDocument, type OpenApiDocument } from '../../src/http/api-routes.ts';

/**
 * Checks the API's JSON responses against the OpenAPI document (`/api/openapi.json`) while the
 * supertest-based tests run: {@link checkResponsesAgainstOpenApi} wraps a test app (buildTestApp
 * does it for every app), each JSON response of a documented route is validated with ajv against
 * the response schema the document gives for its status (or the `default` problem+json), and a
 * mismatch is recorded; test/helpers/openapi-setup.ts fails the test that caused it.
 *
 * Only JSON bodies are checked (files, CSV, text and event streams are not); responses of routes
 * the document does not have are left to the coverage test (test/http/openapi.test.ts).
 */

export interface ResponseViolation {
  request: string;
  status: number;
  problem: string;
}

const violations: ResponseViolation[] = [];

/** The violations recorded since the last call, cleared. */
export function takeResponseViolations(): ResponseViolation[] {
  return violations.splice(0);
}

interface Operation {
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> }>;
}

interface PathMatcher {
  template: string;
  regexp: RegExp;
  params: number;
  operations: Record<string, Operation>;
}

interface Checker {
  document: OpenApiDocument;
  matchers: PathMatcher[];
  ajv: Ajv2020;
  validators: Map<string, ValidateFunction | null>;
}

function pointer(...parts: string[]): string {
  return parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/');
}

function createChecker(app: express.Express): Checker {
  const document = buildOpenApiDocument(app, { version: 'test' });
  const ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
  addFormats.default(ajv);
  ajv.addSchema(document as object, 'openapi.json');
  const matchers = Object.entries(document.paths ?? {})
    .map(([template, item]) => ({
      template,
      regexp: new RegExp(`^${template.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{[^}]+\}/g, '[^/]+')}$`),
      params: (template.match(/\{/g) ?? []).length,
      operations: item as Record<string, Operation>,
    }))
    // A literal segment wins over a parameter (`/api/tasks/uploads` before `/api/tasks/{id}`).
    .sort((a, b) => a.params - b.params);
  return { document, matchers, ajv, validators: new Map() };
}

function isJson(contentType: string | undefined): boolean {
  return !!contentType && /^application\/([\w.+-]*\+)?json\b/.test(contentType);
}

function check(checker: Checker, req: IncomingMessage, url: string, res: ServerResponse, body: Buffer): void {
  const method = (req.method ?? 'GET').toLowerCase();
  const path = url.split('?')[0]!;
  if (!path.startsWith('/api/') || method === 'head' || method === 'options') return;
  const match = checker.matchers.find((m) => m.regexp.test(path) && m.operations[method]);
  if (!match) return;
  const contentType = String(res.getHeader('content-type') ?? '').split(';')[0]!.trim();
  if (!isJson(contentType)) return;
  const status = String(res.statusCode);
  const responses = match.operations[method]!.responses ?? {};
  const documented = responses[status] ?? (res.statusCode >= 400 ? responses.default : undefined);
  const request = `${req.method} ${url}`;
  if (!documented) {
    violations.push({ request, status: res.statusCode, problem: `status ${status} is not documented for ${method.toUpperCase()} ${match.template}` });
    return;
  }
  const statusKey = responses[status] ? status : 'default';
  const mediaType = documented.content?.[contentType] ? contentType : Object.keys(documented.content ?? {}).find((t) => isJson(t));
  if (!mediaType || !documented.content?.[mediaType]?.schema) {
    violations.push({ request, status: res.statusCode, problem: `${method.toUpperCase()} ${match.template} documents no JSON body for ${statusKey}, but answered ${contentType}` });
    return;
  }
  const key = `${method} ${match.template} ${statusKey} ${mediaType}`;
  let validate = checker.validators.get(key);
  if (validate === undefined) {
    validate = checker.ajv.compile({ $ref: `openapi.json#/${pointer('paths', match.template, method, 'responses', statusKey, 'content', mediaType, 'schema')}` });
    checker.validators.set(key, validate);
  }
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    violations.push({ request, status: res.statusCode, problem: 'the body is not JSON' });
    return;
  }
  if (validate && !validate(json)) {
    const errors = (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '(body)'} ${e.message ?? ''}${e.params ? ` ${JSON.stringify(e.params)}` : ''}`);
    violations.push({ request, status: res.statusCode, problem: `does not match the documented schema of ${method.toUpperCase()} ${match.template} ${statusKey}: ${errors.join('; ')}` });
  }
}

/**
 * Makes `app` record a {@link ResponseViolation} for each JSON response that does not match the
 * OpenAPI document. The app is otherwise unchanged (same object, same behaviour).
 */
export function checkResponsesAgainstOpenApi(app: express.Express): express.Express {
  let checker: Checker | undefined;
  const appWithHandle = app as unknown as { handle: (req: IncomingMessage, res: ServerResponse, next?: unknown) => void };
  const handle = appWithHandle.handle.bind(app);
  appWithHandle.handle = (req, res, next) => {
    const url = req.url ?? '/'; // before routing: routers strip their mount path from req.url
    const chunks: Buffer[] = [];
    let capturing: boolean | undefined;
    const capture = (chunk: unknown, encoding?: unknown) => {
      capturing ??= isJson(String(res.getHeader('content-type') ?? ''));
      if (!capturing || chunk === undefined || chunk === null || typeof chunk === 'function') return;
      chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string, typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8'));
    };
    const write = res.write.bind(res) as (...args: unknown[]) => boolean;
    const end = res.end.bind(res) as (...args: unknown[]) => ServerResponse;
    res.write = ((chunk: unknown, ...rest: unknown[]) => {
      capture(chunk, rest[0]);
      return write(chunk, ...rest);
    }) as typeof res.write;
    res.end = ((chunk?: unknown, ...rest: unknown[]) => {
      capture(chunk, rest[0]);
      return end(chunk, ...rest);
    }) as typeof res.end;
    res.once('finish', () => {
      if (!capturing) return;
      try {
        checker ??= createChecker(app);
        check(checker, req, url, res, Buffer.concat(chunks));
      } catch (err) {
        violations.push({ request: `${req.method} ${url}`, status: res.statusCode, problem: `could not be checked: ${(err as Error).message}` });
      }
    });
    return handle(req, res, next);
  };
  return app;
}
