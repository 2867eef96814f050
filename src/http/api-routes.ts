import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import type { ErrorRequestHandler, Express, RequestHandler, Router } from 'express';
import { z } from 'zod';

/**
 * The API's routes, each declared once with the zod schemas that validate it, so the OpenAPI
 * document (`GET /api/openapi.json`) is generated from the same schemas the routes use.
 *
 * A router declares a route with {@link apiRoute} instead of `router.get(…)`: the handlers are
 * mounted exactly as `router.get` would, and the declaration is remembered on the Express route
 * object. {@link buildOpenApiDocument} then walks the app's mounted router stack, so each path
 * in the document is the path the app really answers (mount prefixes included), and a route
 * mounted without a declaration is found by {@link listMountedRoutes} (the coverage test).
 */

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** Who may call a route: anyone, a signed-in user (session cookie), an admin, or Stripe (signed body). */
export type ApiAuth = 'none' | 'user' | 'admin' | 'optional' | 'stripe';

/**
 * A response: a zod schema of its JSON body, or a description with a content type and schema
 * (files, CSV, SSE; none for 204), or several content types (`content`, e.g. a result as text,
 * JSON or PDF). Without a schema, a content type's body is a string.
 */
export type ApiResponse = z.ZodType | { description: string; schema?: z.ZodType; contentType?: string; content?: Record<string, z.ZodType> };

export interface ApiRouteSpec {
  method: HttpMethod;
  /** The Express path, relative to where the router is mounted (`/tasks/:id`). */
  path: string;
  summary: string;
  description?: string;
  /** Default: the first segment after `/api` (`tasks`, `admin`, …). */
  tags?: string[];
  auth: ApiAuth;
  request?: {
    /** Path parameters; default: each `:name` as a string. */
    params?: z.ZodObject | z.ZodPipe;
    query?: z.ZodObject | z.ZodPipe | z.ZodType;
    /** A JSON body (the schema the route validates with). */
    body?: z.ZodType;
    /** A multipart/form-data body (files as binary strings). */
    multipart?: z.ZodType;
    /** Accepts an `Idempotency-Key` header (Stripe's convention). */
    idempotencyKey?: boolean;
  };
  /** By status code. Errors (4xx/5xx) are RFC 9457 problem+json, documented once as `default`. */
  responses: Record<number, ApiResponse>;
}

/** Declarations by Express route object (a route object exists once per declaration). */
const declarations = new WeakMap<object, ApiRouteSpec>();

/**
 * Mounts `handlers` on `router` for `spec.method` and `spec.path` (like `router[method](path, …)`)
 * and records `spec` for the OpenAPI document.
 */
export function apiRoute(router: Router, spec: ApiRouteSpec, ...handlers: RequestHandler[]): void;
/** With error-handling middleware among the handlers (give the handlers' parameter types). */
export function apiRoute(router: Router, spec: ApiRouteSpec, ...handlers: Array<RequestHandler | ErrorRequestHandler>): void;
export function apiRoute(router: Router, spec: ApiRouteSpec, ...handlers: Array<RequestHandler | ErrorRequestHandler>): void {
  const route = router.route(spec.path);
  route[spec.method](...(handlers as RequestHandler[]));
  declarations.set(route, spec);
}

/** One route the app answers: method, full Express path, and its declaration if it has one. */
export interface MountedRoute {
  method: string;
  path: string;
  spec: ApiRouteSpec | undefined;
}

interface StackLayer {
  route?: { path: string | string[]; methods: Record<string, boolean> };
  handle?: { stack?: StackLayer[] };
  rawPath?: unknown;
}

function joinPath(prefix: string, path: string): string {
  const joined = `${prefix}${path === '/' ? '' : path}`;
  return joined === '' ? '/' : joined;
}

function walk(stack: StackLayer[], prefix: string, out: MountedRoute[]): void {
  for (const layer of stack) {
    if (layer.route) {
      const paths = Array.isArray(layer.route.path) ? layer.route.path : [layer.route.path];
      for (const p of paths) {
        for (const method of Object.keys(layer.route.methods)) {
          if (method === '_all') continue;
          out.push({ method, path: joinPath(prefix, p), spec: declarations.get(layer.route) });
        }
      }
    } else if (layer.handle?.stack) {
      const mount = typeof layer.rawPath === 'string' ? layer.rawPath : '/';
      walk(layer.handle.stack, joinPath(prefix, mount).replace(/\/$/, ''), out);
    }
  }
}

/** Every route mounted on `app` (recursively through routers), in mount order. */
export function listMountedRoutes(app: Express): MountedRoute[] {
  const out: MountedRoute[] = [];
  const router = (app as unknown as { router?: { stack: StackLayer[] } }).router;
  if (router) walk(router.stack, '', out);
  return out;
}

/** `/tasks/:id` → `/tasks/{id}`. */
export function openApiPath(expressPath: string): string {
  return expressPath.replace(/:(\w+)/g, '{$1}');
}

/** An RFC 9457 problem: every 4xx/5xx of the API. */
export const Problem = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .catchall(z.unknown())
  .meta({ id: 'Problem' });

const STATUS_TEXT: Record<number, string> = {
  200: 'OK',
  201: 'Created',
  202: 'Accepted',
  204: 'No content',
  303: 'See other',
};

/** The response object of one declared response. */
function responseConfig(status: number, response: ApiResponse) {
  if (response instanceof z.ZodType) return { description: STATUS_TEXT[status] ?? 'OK', content: { 'application/json': { schema: response } } };
  if (response.content) return { description: response.description, content: Object.fromEntries(Object.entries(response.content).map(([type, schema]) => [type, { schema }])) };
  if (!response.contentType && !response.schema) return { description: response.description };
  const contentType = response.contentType ?? 'application/json';
  const schema = response.schema ?? z.string();
  return { description: response.description, content: { [contentType]: { schema } } };
}

function defaultParams(path: string): z.ZodObject | undefined {
  const names = [...path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  return names.length ? z.object(Object.fromEntries(names.map((n) => [n, z.string()]))) : undefined;
}

/**
 * The OpenAPI 3.1 document of every declared route mounted on `app`, generated with
 * `@asteasolutions/zod-to-openapi` from the routes' own zod schemas.
 */
export function buildOpenApiDocument(
  app: Express,
  info: {
    version: string;
    serverUrl?: string;
    /** The API-key scope a route accepts (`tasks:read`), by method and path under `/api`; none: sessions only. */
    keyScope?: (method: string, path: string) => string | undefined;
  },
) {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'session', { type: 'apiKey', in: 'cookie', name: 'tally.sid', description: 'The session cookie set by sign-up or login.' });
  registry.registerComponent('securitySchemes', 'apiKey', { type: 'http', scheme: 'bearer', description: 'An API key (`tly_live_…`), on the routes that name the scope it needs.' });
  registry.registerComponent('securitySchemes', 'stripeSignature', { type: 'apiKey', in: 'header', name: 'Stripe-Signature', description: "Stripe's signature of the raw body." });
  const IdempotencyKey = z.object({ 'Idempotency-Key': z.string().min(1).max(255).optional() });
  for (const { method, path, spec } of listMountedRoutes(app)) {
    if (!spec || !path.startsWith('/api/')) continue;
    const tag = path.split('/')[2] ?? 'api';
    const security: Array<Record<string, string[]>> = spec.auth === 'user' || spec.auth === 'admin' ? [{ session: [] }] : spec.auth === 'stripe' ? [{ stripeSignature: [] }] : spec.auth === 'optional' ? [{}, { session: [] }] : [];
    // A route an API key may call: the key (with its scope) works as well as the session.
    const scope = spec.auth === 'user' ? info.keyScope?.(method.toUpperCase(), path.replace(/^\/api/, '').replace(/:(\w+)/g, 'x')) : undefined;
    if (scope) security.push({ apiKey: [scope] });
    const body = spec.request?.body
      ? { content: { 'application/json': { schema: spec.request.body } }, required: true }
      : spec.request?.multipart
        ? { content: { 'multipart/form-data': { schema: spec.request.multipart } }, required: true }
        : undefined;
    const params = spec.request?.params ?? defaultParams(path);
    registry.registerPath({
      method: method as HttpMethod,
      path: openApiPath(path),
      operationId: `${method}${openApiPath(path)
        .replace(/^\/api/, '')
        .replace(/[{}]/g, '')
        .split(/[/.-]/)
        .filter(Boolean)
        .map((w) => w[0]!.toUpperCase() + w.slice(1))
        .join('')}`,
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      tags: spec.tags ?? [tag],
      security,
      ...(spec.auth === 'admin' ? { 'x-requires': 'admin' } : {}),
      request: {
        ...(params ? { params: params as z.ZodObject } : {}),
        ...(spec.request?.query ? { query: spec.request.query as z.ZodObject } : {}),
        ...(spec.request?.idempotencyKey ? { headers: IdempotencyKey } : {}),
        ...(body ? { body } : {}),
      },
      responses: {
        ...Object.fromEntries(Object.entries(spec.responses).map(([status, r]) => [status, responseConfig(Number(status), r)])),
        default: { description: 'An error (RFC 9457 problem details).', content: { 'application/problem+json': { schema: Problem } } },
      },
    });
  }
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: {
      title: 'Tally API',
      version: info.version,
      description:
        'Prepaid credits, a double-entry credit ledger and metered OCR jobs. Credits are JSON numbers with at most 3 decimals; amounts of money are integer minor units. Errors are RFC 9457 problem+json. Unsafe requests need the session cookie and a same-origin `Origin` header.',
    },
    ...(info.serverUrl ? { servers: [{ url: info.serverUrl }] } : {}),
  });
}

export type OpenApiDocument = ReturnType<typeof buildOpenApiDocument>;
