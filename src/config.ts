import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';

/**
 * Tally's configuration: every environment variable the app reads, parsed once with zod.
 *
 * A bad or missing value stops start-up with a list of every problem (see {@link loadConfig}).
 * `.env.example` lists the same variables with comments; keep both in step.
 */

const int = (min: number, max: number) =>
  z
    .string()
    .regex(/^-?\d+$/, 'must be an integer')
    .transform(Number)
    .pipe(z.number().int().min(min).max(max));

const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

/** Credits as a decimal with at most 3 decimals (`5`, `2.5`), as integer millicredits (defaults are millicredits). */
const creditsVar = z
  .string()
  .regex(/^\d+(\.\d{1,3})?$/, 'must be credits with at most 3 decimals')
  .transform((v) => {
    const [whole, frac = ''] = v.split('.');
    return Number(whole) * 1000 + Number(frac.padEnd(3, '0'));
  })
  .pipe(z.number().int().max(Number.MAX_SAFE_INTEGER));

const EnvSchema = z.object({
  NODE_ENV: z.enum(['development', 'production', 'test']).default('development'),
  PORT: int(0, 65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  APP_URL: optionalString.pipe(z.url().optional()),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),

  DATABASE_URL: optionalString.pipe(z.url().optional()),
  DATA_DIR: z.string().min(1).default('./.data'),
  EMBEDDED_PG_PORT: optionalString.pipe(int(1, 65535).optional()),
  DB_POOL_MAX: int(1, 500).default(10),

  SESSION_SECRET: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  SESSION_IDLE_MINUTES: int(1, 24 * 60).default(15),
  SESSION_MAX_HOURS: int(1, 24 * 30).default(8),
  TRUST_PROXY: optionalString.pipe(z.string().optional()),
  LOGIN_MAX_FAILURES: int(1, 1000).default(10),
  LOGIN_WINDOW_MINUTES: int(1, 24 * 60).default(15),
  SIGNUP_MAX_PER_IP: int(1, 100_000).default(10),
  SIGNUP_WINDOW_MINUTES: int(1, 7 * 24 * 60).default(60),
  API_KEY_RATE_LIMIT_PER_MINUTE: int(1, 100_000).default(60),

  SIGNUP_BONUS_CREDITS: optionalString.pipe(z.string().regex(/^\d+(\.\d{1,3})?$/, 'must be credits with at most 3 decimals').optional()),
  SIGNUP_BONUS_DAYS: int(1, 3650).default(30),
  ADMIN_EMAIL: optionalString.pipe(z.email().optional()),
  ADMIN_PASSWORD: optionalString,

  STRIPE_SECRET_KEY: optionalString.pipe(z.string().regex(/^(sk|rk)_(test|live)_/, 'must start with sk_test_, sk_live_, rk_test_ or rk_live_').optional()),
  STRIPE_WEBHOOK_SECRET: optionalString.pipe(z.string().startsWith('whsec_', 'must start with whsec_').optional()),
  STRIPE_API_BASE: optionalString.pipe(z.url().optional()),
  STRIPE_EMULATOR_PORT: int(0, 65535).default(12111),
  PACK_BONUS_EXPIRY_DAYS: int(0, 3650).default(0),

  MAX_UPLOAD_MB: int(1, 200).default(10),
  MAX_PAGE_PIXELS: int(100_000, 400_000_000).default(100_000_000),
  MAX_PDF_PAGES: int(1, 100_000).default(1000),
  OCR_RENDER_DPI: int(50, 600).default(300),
  OCR_WORKERS: optionalString.pipe(int(1, 64).optional()),
  OCR_LOW_CONFIDENCE: int(0, 100).default(60),
  WORKER: z.enum(['on', 'off']).default('on'),
  WORKER_CONCURRENCY: int(1, 32).default(1),
  TASK_HOLD_MINUTES: int(1, 7 * 24 * 60).default(60),
  SWEEP_INTERVAL_SECONDS: int(1, 3600).default(60),
  JOB_LEASE_SECONDS: int(10, 3600).default(60),
  WORKER_DB_LOST_SECONDS: int(1, 3600).default(60),
  HTTP_REQUEST_TIMEOUT_SECONDS: int(1, 3600).default(120),
  HTTP_HEADERS_TIMEOUT_SECONDS: int(1, 600).default(20),
  TASK_EVENTS_MAX_STREAMS: int(1, 1000).default(10),

  SMTP_URL: optionalString.pipe(z.string().regex(/^smtps?:\/\/[^\s]+$/, 'must be an smtp:// or smtps:// URL').optional()),
  MAIL_FROM: optionalString.pipe(z.string().max(320).optional()),
  OUTBOX_POLL_SECONDS: int(1, 3600).default(5),
  PASSWORD_RESET_MAX_PER_IP: int(1, 100_000).default(20),
  PASSWORD_RESET_MAX_PER_EMAIL: int(1, 1000).default(3),
  PASSWORD_RESET_WINDOW_MINUTES: int(1, 24 * 60).default(60),
  BENCH_ROUTES: z.enum(['on', 'off']).default('off'),

  // Growth (issue 17): promo codes, referrals, visitors' trial credits, gifts.
  PROMO_REDEEM_MAX_FAILURES: int(1, 100_000).default(10),
  PROMO_REDEEM_WINDOW_MINUTES: int(1, 24 * 60).default(60),
  REFERRAL_REFEREE_CREDITS: creditsVar.default(5_000),
  REFERRAL_REFERRER_CREDITS: creditsVar.default(10_000),
  REFERRAL_CREDITS_DAYS: int(1, 3650).default(90),
  REFERRAL_MAX_PER_MONTH: int(0, 100_000).default(10),
  LEAD_TRIAL_CREDITS: creditsVar.default(3_000),
  LEAD_TRIAL_DAYS: int(1, 365).default(7),
  LEAD_MAX_PER_IP_PER_DAY: int(1, 100_000).default(3),
  GIFT_CLAIM_DAYS: int(1, 365).default(30),
  // Operators: Prometheus metrics (issue 18).
  METRICS_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').regex(/^[\x21-\x7e]+$/, 'must be printable ASCII without spaces').optional()),
  // Privacy and retention (issue 19)
  RETENTION_UPLOAD_DAYS: int(1, 36_500).default(30),
  RETENTION_RESULT_DAYS: int(1, 36_500).default(90),
  RETENTION_SESSION_DAYS: int(1, 36_500).default(30),
  RETENTION_AUDIT_DAYS: int(365, 36_500).default(2555),
  // Receipts (issue 18): the seller printed on HTML and PDF receipts.
  SELLER_NAME: optionalString.pipe(z.string().max(200).optional()),
  SELLER_ADDRESS: optionalString.pipe(z.string().max(500).optional()),
  SELLER_TAX_ID: optionalString.pipe(z.string().max(100).optional()),
});

export type Env = z.infer<typeof EnvSchema>;

/** The parsed, frozen configuration the app is built from. Amounts of credits are millicredits. */
export interface Config {
  env: Env['NODE_ENV'];
  isProduction: boolean;
  port: number;
  host: string;
  /** Public base URL, no trailing slash (e.g. `http://localhost:3000`). */
  appUrl: string;
  logLevel: Env['LOG_LEVEL'];
  databaseUrl: string | undefined;
  /** Absolute path of the data directory (embedded Postgres, uploads, generated secrets). */
  dataDir: string;
  embeddedPgPort: number | undefined;
  dbPoolMax: number;
  session: {
    /** Undefined means: generate one and keep it in the data dir (development only). */
    secret: string | undefined;
    idleMs: number;
    maxAgeMs: number;
    /** Value for Express's `trust proxy` setting, or false. */
    trustProxy: boolean | number | string;
    secureCookie: boolean;
  };
  login: { maxFailures: number; windowMs: number };
  /** Sign-ups allowed from one IP per window (each grants free credits). */
  signupLimit: { maxPerIp: number; windowMs: number };
  /** Requests per minute of an API key that sets no limit of its own. */
  apiKeyRatePerMinute: number;
  signupBonus: { millicredits: number; days: number };
  admin: { email: string; password: string } | undefined;
  stripe: {
    secretKey: string | undefined;
    webhookSecret: string | undefined;
    apiBase: string | undefined;
    emulatorPort: number;
    /** True when no real key is set: the built-in emulator serves the API. */
    useEmulator: boolean;
  };
  /** Days until a pack's bonus credits expire; 0 = never. */
  packBonusExpiryDays: number;
  tasks: {
    maxUploadBytes: number;
    /** Largest page rendering, and largest image embedded in a PDF, in pixels (memory bound). */
    maxPagePixels: number;
    /** Most pages a PDF may have (page counting itself slows down on huge page trees). */
    maxPages: number;
    renderDpi: number;
    /** Tesseract workers of a worker process (one per core by default), started with it. */
    ocrWorkers: number;
    /** OCR pages whose mean confidence (0–100) is below this are flagged for the user to check. */
    lowConfidence: number;
    worker: boolean;
    workerConcurrency: number;
    holdTimeoutMs: number;
    /**
     * Lease of a running job, seconds: the worker renews it while it runs; a job whose worker died
     * (SIGKILL, lost machine) is retried once it lapses, within about 1.5 leases.
     */
    jobLeaseSeconds: number;
    /** A separate worker that cannot reach its database this long exits (code 1) for its supervisor, ms. */
    dbLostExitMs: number;
    /** Open task-progress streams (`GET /api/tasks/:id/events`) per user; beyond: 429. */
    maxEventStreamsPerUser: number;
  };
  /** Node's `server.requestTimeout` and `server.headersTimeout`, ms (a slow client is cut off). */
  http: { requestTimeoutMs: number; headersTimeoutMs: number };
  sweepIntervalMs: number;
  mail: {
    /** smtp:// or smtps:// URL of the mail server; undefined: emails stay in the outbox, not sent. */
    smtpUrl: string | undefined;
    /** The From header of every email. */
    from: string;
  };
  /** How often the email and webhook senders look for due rows (ms). */
  outboxPollMs: number;
  /** Password-reset requests allowed per client IP and per email address per window. */
  passwordResetLimit: { maxPerIp: number; maxPerEmail: number; windowMs: number };
  /** `BENCH_ROUTES=on`: mount the bench-only routes under /api/bench (npm run bench turns it on). */
  benchRoutes: boolean;
  /** Credits in without a purchase (issue 17). Amounts are millicredits. */
  growth: {
    /** Failed promo-code redemptions allowed per user and per IP per window (guessing is brute force). */
    promoRedeem: { maxFailures: number; windowMs: number };
    referral: { refereeMillicredits: number; referrerMillicredits: number; creditsDays: number; maxPerMonth: number };
    lead: { trialMillicredits: number; trialDays: number; maxPerIpPerDay: number };
    /** Days an unclaimed gift waits before it returns to its sender. */
    giftClaimDays: number;
  };
  /** Bearer token of `GET /metrics` (Prometheus); undefined: the route is off (404). */
  metricsToken: string | undefined;
  /** How long data is kept, days (GDPR Art. 5(1)(e)); the privacy sweeper deletes what is older. */
  retention: { uploadDays: number; resultDays: number; sessionDays: number; auditDays: number };
  /** The seller on receipts: name, address lines (`SELLER_ADDRESS` split at `;`), tax id. */
  seller: { name: string; address: string[]; taxId: string | undefined };
}

/** Raised when the environment is invalid; `problems` has one line per bad variable. */
export class ConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
  }
}

function parseTrustProxy(value: string | undefined): boolean | number | string {
  if (value === undefined) return false;
  if (value === 'true') return true;
  if (value === 'false') return false;
  if (/^\d+$/.test(value)) return Number(value);
  return value; // e.g. "loopback, 10.0.0.0/8"
}

/**
 * Parses `env` (default `process.env`) into a frozen {@link Config}.
 * Empty strings count as unset. Throws {@link ConfigError} listing every invalid variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Readonly<Config> {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((i) => `${i.path.join('.') || '(env)'}: ${i.message}`));
  }
  const e = parsed.data;
  const problems: string[] = [];
  if (e.STRIPE_SECRET_KEY && !e.STRIPE_WEBHOOK_SECRET) {
    problems.push('STRIPE_WEBHOOK_SECRET: required when STRIPE_SECRET_KEY is set');
  }
  if (e.NODE_ENV === 'production' && !e.SESSION_SECRET) {
    problems.push('SESSION_SECRET: required when NODE_ENV=production');
  }
  if ((e.ADMIN_EMAIL === undefined) !== (e.ADMIN_PASSWORD === undefined)) {
    problems.push('ADMIN_EMAIL / ADMIN_PASSWORD: set both or neither');
  }
  if (e.HTTP_HEADERS_TIMEOUT_SECONDS > e.HTTP_REQUEST_TIMEOUT_SECONDS) {
    problems.push('HTTP_HEADERS_TIMEOUT_SECONDS: must not exceed HTTP_REQUEST_TIMEOUT_SECONDS');
  }
  if (e.NODE_ENV === 'production' && e.SMTP_URL && !e.MAIL_FROM) {
    problems.push('MAIL_FROM: required with SMTP_URL when NODE_ENV=production');
  }
  if (e.SMTP_URL) {
    try {
      new URL(e.SMTP_URL);
    } catch {
      problems.push('SMTP_URL: is not a valid URL');
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);

  const appUrl = (e.APP_URL ?? `http://localhost:${e.PORT}`).replace(/\/+$/, '');
  const bonus = e.SIGNUP_BONUS_CREDITS ?? '10';
  const [whole, frac = ''] = bonus.split('.');
  const signupMillicredits = Number(whole) * 1000 + Number(frac.padEnd(3, '0'));

  const config: Config = {
    env: e.NODE_ENV,
    isProduction: e.NODE_ENV === 'production',
    port: e.PORT,
    host: e.HOST,
    appUrl,
    logLevel: e.LOG_LEVEL,
    databaseUrl: e.DATABASE_URL,
    dataDir: path.resolve(e.DATA_DIR),
    embeddedPgPort: e.EMBEDDED_PG_PORT,
    dbPoolMax: e.DB_POOL_MAX,
    session: {
      secret: e.SESSION_SECRET,
      idleMs: e.SESSION_IDLE_MINUTES * 60_000,
      maxAgeMs: e.SESSION_MAX_HOURS * 3_600_000,
      trustProxy: parseTrustProxy(e.TRUST_PROXY),
      secureCookie: appUrl.startsWith('https://'),
    },
    login: { maxFailures: e.LOGIN_MAX_FAILURES, windowMs: e.LOGIN_WINDOW_MINUTES * 60_000 },
    signupLimit: { maxPerIp: e.SIGNUP_MAX_PER_IP, windowMs: e.SIGNUP_WINDOW_MINUTES * 60_000 },
    apiKeyRatePerMinute: e.API_KEY_RATE_LIMIT_PER_MINUTE,
    signupBonus: { millicredits: signupMillicredits, days: e.SIGNUP_BONUS_DAYS },
    admin: e.ADMIN_EMAIL && e.ADMIN_PASSWORD ? { email: e.ADMIN_EMAIL, password: e.ADMIN_PASSWORD } : undefined,
    stripe: {
      secretKey: e.STRIPE_SECRET_KEY,
      webhookSecret: e.STRIPE_WEBHOOK_SECRET,
      apiBase: e.STRIPE_API_BASE,
      emulatorPort: e.STRIPE_EMULATOR_PORT,
      useEmulator: !e.STRIPE_SECRET_KEY,
    },
    packBonusExpiryDays: e.PACK_BONUS_EXPIRY_DAYS,
    tasks: {
      maxUploadBytes: e.MAX_UPLOAD_MB * 1024 * 1024,
      maxPagePixels: e.MAX_PAGE_PIXELS,
      maxPages: e.MAX_PDF_PAGES,
      renderDpi: e.OCR_RENDER_DPI,
      ocrWorkers: e.OCR_WORKERS ?? Math.max(1, os.availableParallelism()),
      lowConfidence: e.OCR_LOW_CONFIDENCE,
      worker: e.WORKER === 'on',
      workerConcurrency: e.WORKER_CONCURRENCY,
      holdTimeoutMs: e.TASK_HOLD_MINUTES * 60_000,
      jobLeaseSeconds: e.JOB_LEASE_SECONDS,
      dbLostExitMs: e.WORKER_DB_LOST_SECONDS * 1000,
      maxEventStreamsPerUser: e.TASK_EVENTS_MAX_STREAMS,
    },
    http: { requestTimeoutMs: e.HTTP_REQUEST_TIMEOUT_SECONDS * 1000, headersTimeoutMs: e.HTTP_HEADERS_TIMEOUT_SECONDS * 1000 },
    sweepIntervalMs: e.SWEEP_INTERVAL_SECONDS * 1000,
    mail: { smtpUrl: e.SMTP_URL, from: e.MAIL_FROM ?? `Tally <no-reply@${new URL(appUrl).hostname}>` },
    outboxPollMs: e.OUTBOX_POLL_SECONDS * 1000,
    passwordResetLimit: {
      maxPerIp: e.PASSWORD_RESET_MAX_PER_IP,
      maxPerEmail: e.PASSWORD_RESET_MAX_PER_EMAIL,
      windowMs: e.PASSWORD_RESET_WINDOW_MINUTES * 60_000,
    },
    benchRoutes: e.BENCH_ROUTES === 'on',
    growth: {
      promoRedeem: { maxFailures: e.PROMO_REDEEM_MAX_FAILURES, windowMs: e.PROMO_REDEEM_WINDOW_MINUTES * 60_000 },
      referral: {
        refereeMillicredits: e.REFERRAL_REFEREE_CREDITS,
        referrerMillicredits: e.REFERRAL_REFERRER_CREDITS,
        creditsDays: e.REFERRAL_CREDITS_DAYS,
        maxPerMonth: e.REFERRAL_MAX_PER_MONTH,
      },
      lead: { trialMillicredits: e.LEAD_TRIAL_CREDITS, trialDays: e.LEAD_TRIAL_DAYS, maxPerIpPerDay: e.LEAD_MAX_PER_IP_PER_DAY },
      giftClaimDays: e.GIFT_CLAIM_DAYS,
    },
    metricsToken: e.METRICS_TOKEN,
    retention: { uploadDays: e.RETENTION_UPLOAD_DAYS, resultDays: e.RETENTION_RESULT_DAYS, sessionDays: e.RETENTION_SESSION_DAYS, auditDays: e.RETENTION_AUDIT_DAYS },
    seller: {
      name: e.SELLER_NAME ?? 'Tally',
      address: (e.SELLER_ADDRESS ?? '').split(';').map((l) => l.trim()).filter(Boolean),
      taxId: e.SELLER_TAX_ID,
    },
  };
  return deepFreeze(config);
}

function deepFreeze<T extends object>(o: T): Readonly<T> {
  for (const v of Object.values(o)) if (v && typeof v === 'object') deepFreeze(v);
  return Object.freeze(o);
}
