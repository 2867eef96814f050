import path from 'node:path';
import { fileURLToPath } from 'node:url';
import crypto from 'node:crypto';
import express from 'express';
import helmet from 'helmet';
import { pinoHttp } from 'pino-http';
import { csrfSync } from 'csrf-sync';
import { createBenchRouter } from './credits/bench-routes.ts';
import { isReady } from './db/database.ts';
import type { Feature } from './feature.ts';
import type { Services } from './services.ts';
import { createSessionMiddleware, enforceAbsoluteLifetime, saveSessionBeforeRedirect } from './auth/session.ts';
import { loadUser } from './auth/auth-middleware.ts';
import { originCheck } from './http/origin-check.ts';
import { errorHandler, notFoundHandler, wantsJson } from './http/problem.ts';
import { millicreditsToCredits } from './ledger/credits.ts';
import { createAuthFeature } from './auth/auth-feature.ts';
import { createCreditsFeature } from './credits/credits-feature.ts';
import { createPricingFeature } from './credits/pricing-feature.ts';
import { createAdminFeature } from './admin/admin-feature.ts';
import { createPaymentsFeature } from './payments/payments-feature.ts';
import { createSubscriptionsFeature } from './subscriptions/subscriptions-feature.ts';
import { createTasksFeature } from './tasks/tasks-feature.ts';
import { createHomeFeature } from './pages/home-feature.ts';
import { createTeamsFeature } from './teams/teams-feature.ts';
import { apiKeyAuth, scopeFor } from './api-keys/api-key-auth.ts';
import { createSpendFeature } from './spend/spend-feature.ts';
import { createNotificationsFeature } from './notifications/notifications-feature.ts';
import { createGrowthFeature } from './growth/growth-feature.ts';
import { createMetricsRouter, httpMetrics } from './metrics/metrics-router.ts';
import { createApiDocsRouter } from './http/api-docs-router.ts';
import { createPrivacyFeature } from './privacy/privacy-feature.ts';
import { auditPolicyRefusals } from './privacy/refusal-audit.ts';
import { createInsightFeature } from './insight/insight-feature.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The request URL for logs, with secrets in the query string (CSRF tokens) masked. */
function redactUrl(url: string | undefined): string | undefined {
  return url?.replace(/([?&]_csrf=)[^&#]*/g, '$1[redacted]');
}

/**
 * Builds the Express app on services built once by `createServices` (src/compose.ts). No side
 * effects beyond building (no listening, no timers). Features are independent of their order.
 */
export function createApp(services: Services): express.Express {
  const { config, db, logger } = services;
  const app = express();
  app.set('trust proxy', config.session.trustProxy);
  app.set('view engine', 'ejs');
  app.set('views', path.join(ROOT, 'views'));
  app.disable('x-powered-by');
  app.use(httpMetrics(services.metrics));

  app.use(
    pinoHttp({
      logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && /^[\w.-]{1,100}$/.test(given) ? given : crypto.randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' || req.url === '/metrics' || (req.url ?? '').startsWith('/static/') },
      serializers: { req: (req) => ({ id: req.id, method: req.method, url: redactUrl(req.url) }), res: (res) => ({ statusCode: res.statusCode }) },
    }),
  );
  app.use(
    helmet({
      contentSecurityPolicy: {
        directives: {
          defaultSrc: ["'self'"],
          scriptSrc: ["'self'"],
          styleSrc: ["'self'"],
          imgSrc: ["'self'", 'data:'],
          formAction: null, // forms post to Stripe Checkout's host (303 redirects) as well
          upgradeInsecureRequests: null,
        },
      },
      strictTransportSecurity: config.session.secureCookie,
    }),
  );

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  app.get('/readyz', async (_req, res) => {
    const ready = await isReady(db);
    res.status(ready.ok ? 200 : 503).json({ status: ready.ok ? 'ready' : 'not ready', ...ready });
  });
  // Prometheus: a bearer token of its own (METRICS_TOKEN), no session; off (404) without one.
  app.use(createMetricsRouter(services.metrics, config.metricsToken));

  app.use('/static/pico', express.static(path.join(ROOT, 'node_modules/@picocss/pico/css'), { maxAge: '1d' }));
  // Chart.js (usage and team charts) and Swagger UI (/api/docs), served from node_modules: no CDN.
  app.use('/static/chart', express.static(path.join(ROOT, 'node_modules/chart.js/dist'), { maxAge: '1d' }));
  app.use('/static/swagger-ui', express.static(path.join(ROOT, 'node_modules/swagger-ui-dist'), { maxAge: '1d', index: false }));
  app.use('/static', express.static(path.join(ROOT, 'public'), { maxAge: config.isProduction ? '1h' : 0 }));

  const features: Feature[] = [
    createNotificationsFeature(services),
    createAuthFeature(services),
    createPaymentsFeature(services),
    createSubscriptionsFeature(services),
    createCreditsFeature(services),
    createPricingFeature(services),
    createTasksFeature(services),
    createSpendFeature(services),
    createAdminFeature(services),
    createGrowthFeature(services),
    createInsightFeature(services),
    createTeamsFeature(services),
    createPrivacyFeature(services),
    createHomeFeature(),
  ];

  const { middleware: sessionMiddleware } = createSessionMiddleware(services.pgPool, config, services.sessionSecret);
  for (const f of features) if (f.raw) app.use(f.raw);

  app.use(sessionMiddleware);
  app.use(saveSessionBeforeRedirect());
  app.use(enforceAbsoluteLifetime(config.session.maxAgeMs));
  app.use(express.json({ limit: '100kb' }));
  app.use(express.urlencoded({ extended: false, limit: '100kb' }));
  app.use(loadUser(db));
  // A visitor's trial lead acts as a user on the tasks paths only (issue 17, src/growth/leads-service.ts).
  app.use(services.growth.leads.middleware);

  // JSON API: SameSite cookies + Origin check.
  const origin = new URL(config.appUrl);
  const twins = origin.hostname === 'localhost' ? [`${origin.protocol}//127.0.0.1${origin.port ? `:${origin.port}` : ''}`] : [];
  const apiRouter = express.Router();
  // `Authorization: Bearer tly_live_…`: the key's owner, the key's scopes (no cookie, no CSRF).
  apiRouter.use(apiKeyAuth({ db, apiKeys: services.apiKeys, pgPool: services.pgPool, defaultRatePerMinute: config.apiKeyRatePerMinute }));
  apiRouter.use(originCheck(config.appUrl, twins));
  apiRouter.use(createApiDocsRouter(() => app, { keyScope: scopeFor }));
  for (const f of features) if (f.api) apiRouter.use(f.api);
  if (config.benchRoutes) apiRouter.use(createBenchRouter({ ledger: services.ledger, config }));
  apiRouter.use(notFoundHandler);
  app.use('/api', apiRouter);

  // Pages: synchronizer-token CSRF protection on every form post.
  const csrf = csrfSync({
    getTokenFromRequest: (req) => {
      const fromBody = (req.body as Record<string, unknown> | undefined)?._csrf;
      if (typeof fromBody === 'string') return fromBody;
      const fromQuery = req.query._csrf;
      if (typeof fromQuery === 'string') return fromQuery;
      const header = req.headers['x-csrf-token'];
      return typeof header === 'string' ? header : undefined;
    },
    errorConfig: { statusCode: 403, message: 'invalid csrf token', code: 'EBADCSRFTOKEN' },
  });
  app.use(csrf.csrfSynchronisedProtection);
  app.use(async (req, res, next) => {
    // What every page's layout needs: the user, their balance (header) and a CSRF token.
    res.locals.currentUser = req.user;
    res.locals.csrfToken = csrf.generateToken(req);
    res.locals.path = req.path;
    res.locals.appName = 'Tally';
    res.locals.headerBalance = req.user && !wantsJson(req) ? millicreditsToCredits(await services.ledger.getAvailable(req.user.id)) : undefined;
    res.locals.unreadNotifications = req.user && !wantsJson(req) ? await services.notifications.notifications.unreadCount(req.user.id) : undefined;
    next();
  });
  for (const f of features) if (f.pages) app.use(f.pages);

  app.use(notFoundHandler);
  app.use(auditPolicyRefusals(services.audit, services.logger));
  app.use(errorHandler);
  return app;
}
