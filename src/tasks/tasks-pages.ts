import type { Spender } from '../teams/spend-policy.ts';
import crypto from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { SpendControls } from '../spend/spend-service.ts';
import { spendSettingsJson } from '../spend/spend-json.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { SESSION_COOKIE, setFlash, takeFlash } from '../auth/session.ts';
import type { Pricing } from '../credits/pricing-service.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { asProblem } from '../http/domain-problems.ts';
import { type AppError, ValidationError } from '../http/errors.ts';
import { schemas } from '../http/validate.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { InsufficientCreditsError, SpendCapExceededError } from '../ledger/ledger-errors.ts';
import { taskIdOf } from './tasks-router.ts';
import { uploadDocument, uploadedFiles } from './task-upload.ts';
import { taskJson, taskPageJson, uploadJson } from './tasks-json.ts';
import { OCR_OPERATION, ocrCost } from './task-pricing.ts';
import type { TasksService } from './tasks-service.ts';
import { OCR_LANGUAGES } from './ocr-languages.ts';
import { UploadFields } from './tasks-schemas.ts';
import { TASK_STATUSES, type TaskPage, type TaskStatus } from './tasks-store.ts';

/**
 * What a completed task was charged, line by line for the task page: pages by how they were read
 * (with the price of each), then the per-document part (the rest of the charge). Credits.
 */
export function chargeLines(pages: TaskPage[], chargedMillicredits: number): Array<{ label: string; credits: number }> {
  const kinds: Array<{ source: TaskPage['source']; one: string; many: string }> = [
    { source: 'ocr', one: 'page read by OCR', many: 'pages read by OCR' },
    { source: 'text-layer', one: 'page read from its text layer', many: 'pages read from their text layer' },
    { source: 'blank', one: 'blank page', many: 'blank pages' },
  ];
  const lines: Array<{ label: string; credits: number }> = [];
  let pagesTotal = 0;
  for (const kind of kinds) {
    const of = pages.filter((p) => p.source === kind.source);
    if (of.length === 0) continue;
    const each = of[0]!.chargedMillicredits ?? 0;
    const subtotal = of.reduce((sum, p) => sum + (p.chargedMillicredits ?? 0), 0);
    pagesTotal += subtotal;
    const what = `${of.length} ${of.length === 1 ? kind.one : kind.many}`;
    lines.push({ label: each === 0 ? `${what}, free` : `${what} × ${millicreditsToCredits(each)}`, credits: millicreditsToCredits(subtotal) });
  }
  if (chargedMillicredits >= pagesTotal) lines.push({ label: 'Per document', credits: millicreditsToCredits(chargedMillicredits - pagesTotal) });
  return lines;
}

/** Characters of extracted text shown on the task page; the rest is in the download. */
const TEXT_PREVIEW_CHARS = 200_000;
const PAGE_SIZE = 20;
/** Documents one upload form post may carry. */
export const MAX_FILES_PER_UPLOAD = 10;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

declare module 'express-serve-static-core' {
  interface Request {
    /** Why the multipart upload of `POST /tasks/uploads` could not be read (set by the early parser). */
    uploadError?: AppError;
  }
}

export interface TasksPagesOptions {
  service: TasksService;
  pricing: Pricing;
  maxUploadBytes: number;
  /** Which wallet an upload spends from (the form's `wallet` field; src/teams/wallets.ts). */
  spender?: (req: Request) => Promise<Spender | undefined>;
  /** The teams whose pools the user may spend from, and their default (`team:<id>` or `personal`). */
  wallets?: (userId: string) => Promise<{ teams: Array<{ id: string; name: string }>; current: string }>;
  /** Available millicredits of a team's pool (shown when kept uploads will spend from it). */
  poolAvailable?: (teamId: string) => Promise<number>;
  /** The user's spend caps with their room now (src/spend/), shown beside the estimate. */
  spend?: Pick<SpendControls, 'getSettings'>;
}

/** A page-level message: what went wrong, and whether buying credits is the way out. */
interface PageError {
  message: string;
  topUp: boolean;
  /** A spend cap refused it: link to the limits page. */
  limits?: boolean;
}

function pageError(err: unknown, problem: AppError): PageError {
  if (err instanceof SpendCapExceededError) return { message: `Not started: ${problem.detail}`, topUp: false, limits: true };
  if (err instanceof InsufficientCreditsError) {
    return {
      message: `Not enough credits: this document needs ${millicreditsToCredits(err.requiredMillicredits)} credits and you have ${millicreditsToCredits(err.availableMillicredits)}.`,
      topUp: true,
    };
  }
  if (err instanceof ValidationError) {
    return { message: err.errors.map((e) => e.message.charAt(0).toUpperCase() + e.message.slice(1)).join(' '), topUp: false };
  }
  return { message: problem.detail, topUp: false };
}

/**
 * Reads the multipart body of the upload form (`POST /tasks/uploads`) before the CSRF check, so
 * the token travels in the body like every other form's (not in the URL, where it would reach
 * history and logs). Mounted before the session and body parsers (a feature's `raw` router).
 * A body that cannot be read (too large, too many files) is noted on `req.uploadError` for the
 * page to explain after the CSRF check and sign-in.
 */
export function createTasksUploadParser(maxUploadBytes: number): express.Router {
  const parse = uploadDocument(maxUploadBytes, MAX_FILES_PER_UPLOAD);
  const raw = express.Router();
  raw.post('/tasks/uploads', (req, res, next) => {
    // Only a request with a session cookie can pass the CSRF check and sign-in that follow: leave
    // the others' bodies unread (no multi-file body held in memory for a visitor).
    if (!(req.headers.cookie ?? '').includes(`${SESSION_COOKIE}=`)) return next();
    parse(req, res, (err?: unknown) => {
      const problem = asProblem(err);
      if (problem) req.uploadError = problem;
      else if (err) return next(err);
      next();
    });
  });
  return raw;
}

/**
 * The /tasks pages (signed in), working without JavaScript, every POST answered with a 303:
 * 1. the form posts one or more documents and an optional OCR language (multipart, CSRF token in
 *    the body) to `POST /tasks/uploads`: the language is checked first (`UploadFields`; a bad one
 *    keeps nothing), then each document is inspected, priced and kept with it (nothing held), then
 * 2. `GET /tasks?uploads=<id>,<id>` shows each file's pages and estimate, the total and the
 *    balance, and one "Confirm" form that posts the upload ids to
 * 3. `POST /tasks/confirm`: each kept upload becomes a task (hold + job), and the page goes to the
 *    task (one) or the list (several). Nothing is uploaded twice.
 * public/tasks.js adds drag and drop, the same steps without leaving the page, live progress over
 * server-sent events and a signal when a job finishes.
 */
export function createTasksPages(options: TasksPagesOptions): express.Router {
  const { service, pricing } = options;
  const pages = express.Router();

  async function renderIndex(req: Request, res: Response, status: number, error?: PageError) {
    const raw = typeof req.query.status === 'string' ? req.query.status : '';
    const statusFilter = (TASK_STATUSES as readonly string[]).includes(raw) ? (raw as TaskStatus) : undefined;
    const cursor = typeof req.query.cursor === 'string' && schemas.cursor.safeParse(req.query.cursor).success ? req.query.cursor : undefined;
    let list;
    try {
      list = await service.list(req.user!.id, { status: statusFilter, cursor, limit: PAGE_SIZE });
    } catch (err) {
      if (!(err instanceof ValidationError)) throw err;
      list = await service.list(req.user!.id, { status: statusFilter, limit: PAGE_SIZE });
    }
    const { price } = await ocrCost(pricing, 1);
    const spendCaps = options.spend ? spendSettingsJson(await options.spend.getSettings(req.user!.id)).caps : undefined;
    const components = new Map((await pricing.components(OCR_OPERATION)).map((c) => [c.component, millicreditsToCredits(c.millicredits)]));
    const wanted = (typeof req.query.uploads === 'string' ? req.query.uploads.split(',') : []).filter((id) => UUID.test(id)).slice(0, MAX_FILES_PER_UPLOAD);
    const stagedUploads = await service.staged(req.user!.id, wanted);
    const staged = stagedUploads.map(uploadJson);
    const stagedMilli = stagedUploads.reduce((sum, u) => sum + u.millicredits, 0);
    const olderParams = new URLSearchParams();
    if (statusFilter) olderParams.set('status', statusFilter);
    if (list.nextCursor) olderParams.set('cursor', list.nextCursor);
    const wallets = options.wallets ? await options.wallets(req.user!.id) : { teams: [], current: 'personal' };
    // Uploads kept together share their wallet: a team's pool is named with its balance.
    const stagedTeamId = stagedUploads.find((u) => u.upload.teamId)?.upload.teamId;
    const stagedTeam = stagedTeamId
      ? {
          name: wallets.teams.find((t) => t.id === stagedTeamId)?.name ?? 'pool',
          balance: millicreditsToCredits(options.poolAvailable ? await options.poolAvailable(stagedTeamId) : 0),
        }
      : null;
    res.status(status).render('tasks/index', {
      title: 'Tasks',
      wallets,
      flash: takeFlash(req),
      error,
      tasks: list.items.map(taskJson),
      statuses: TASK_STATUSES,
      statusFilter: statusFilter ?? '',
      olderHref: list.nextCursor ? `/tasks?${olderParams}#tasks` : undefined,
      isFirstPage: !cursor,
      maxUploadMb: Math.round((options.maxUploadBytes / (1024 * 1024)) * 10) / 10,
      price: {
        base: millicreditsToCredits(price.baseMillicredits),
        perPage: millicreditsToCredits(price.perUnitMillicredits),
        ocrPage: components.get('ocr') ?? millicreditsToCredits(price.perUnitMillicredits),
        textLayerPage: components.get('text-layer') ?? null,
        blankFree: components.get('blank') === 0,
      },
      languages: Object.entries(OCR_LANGUAGES).map(([code, name]) => ({ code, name })),
      languageNames: OCR_LANGUAGES,
      staged,
      stagedTeam,
      stagedTotal: millicreditsToCredits(stagedMilli),
      stagedExpired: wanted.length > staged.length,
      maxFiles: MAX_FILES_PER_UPLOAD,
      spendCaps,
      fmt: viewHelpers,
    });
  }

  async function renderShow(req: Request, res: Response, id: string, status: number, error?: PageError) {
    const userId = req.user!.id;
    const task = await service.get(userId, id);
    const pageStats = await service.pages(userId, id);
    let text: string | undefined;
    let truncated = false;
    // after the retention sweep the page says so (views/tasks/show.ejs) instead of showing an empty text
    if (task.status === 'completed' && !task.resultsDeletedAt) {
      const result = await service.result(userId, id);
      truncated = result.text.length > TEXT_PREVIEW_CHARS;
      text = truncated ? result.text.slice(0, TEXT_PREVIEW_CHARS) : result.text;
    }
    res.status(status).render('tasks/show', {
      title: task.fileName,
      flash: takeFlash(req),
      error,
      task: taskJson(task),
      pageStats: pageStats.map(taskPageJson),
      languageNames: OCR_LANGUAGES,
      charges: task.status === 'completed' ? chargeLines(pageStats, task.chargedMillicredits ?? 0) : [],
      lowConfidencePages: pageStats.filter((p) => p.lowConfidence).map((p) => p.page),
      text,
      truncated,
      retention: service.retention,
      idempotencyKey: crypto.randomUUID(),
      fmt: viewHelpers,
    });
  }

  pages.get('/tasks', requireAuth, async (req, res) => {
    await renderIndex(req, res, 200);
  });

  pages.post('/tasks/uploads', requireAuth, async (req, res) => {
    const problems: string[] = [];
    let topUp = false;
    if (req.uploadError) problems.push(pageError(req.uploadError, req.uploadError).message);
    // The language (issue 12) is checked before anything is kept: a bad one stages nothing.
    const fields = UploadFields.safeParse(req.body ?? {});
    if (!req.uploadError && !fields.success) problems.push('Choose a language from the list, or "Detect for each page".');
    // The wallet (issue 16) too: a malformed one, or a team the user is not in, keeps nothing.
    let spender: Spender | undefined;
    let walletOk = true;
    if (!req.uploadError && fields.success && options.spender) {
      try {
        spender = await options.spender(req);
      } catch (err) {
        const problem = asProblem(err);
        if (!problem || problem.status >= 500) throw err;
        walletOk = false;
        problems.push('Choose whose credits pay: yours or one of your teams.');
      }
    }
    const files = req.uploadError || !fields.success || !walletOk ? [] : uploadedFiles(req);
    if (files.length === 0 && problems.length === 0) problems.push('Choose a PDF, PNG, JPEG, TIFF or WebP document first.');
    const language = fields.success ? fields.data.language : null;
    const ids: string[] = [];
    for (const file of files) {
      try {
        ids.push((await service.stage(req.user!.id, { ...file, language }, spender)).upload.id);
      } catch (err) {
        const problem = asProblem(err);
        if (!problem || problem.status >= 500) throw err;
        const e = pageError(err, problem);
        topUp ||= e.topUp;
        problems.push(files.length > 1 ? `${file.fileName}: ${e.message}` : e.message);
      }
    }
    if (problems.length > 0) setFlash(req, { type: 'error', message: problems.join(' '), ...(topUp ? { topUp } : {}) });
    res.redirect(303, ids.length > 0 ? `/tasks?uploads=${ids.join(',')}#confirm` : '/tasks#upload');
  });

  pages.post('/tasks/confirm', requireAuth, async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const ids = ([] as unknown[]).concat(body.uploadId ?? []).filter((id): id is string => typeof id === 'string' && UUID.test(id)).slice(0, MAX_FILES_PER_UPLOAD);
    if (ids.length === 0) {
      setFlash(req, { type: 'error', message: 'Nothing to confirm: upload a document first.' });
      return res.redirect(303, '/tasks#upload');
    }
    const created: string[] = [];
    for (const id of ids) {
      try {
        created.push((await service.confirm(req.user!.id, id)).task.id);
      } catch (err) {
        const problem = asProblem(err);
        if (!problem || problem.status >= 500) throw err;
        const e = pageError(err, problem);
        const rest = ids.filter((x) => !created.includes(x));
        setFlash(req, {
          type: 'error',
          message: created.length > 0 ? `${created.length} of ${ids.length} documents are queued. ${e.message}` : e.message,
          ...(e.topUp ? { topUp: true } : {}),
          ...(e.limits ? { limits: true } : {}),
        });
        return res.redirect(303, err instanceof InsufficientCreditsError || err instanceof SpendCapExceededError ? `/tasks?uploads=${rest.join(',')}#confirm` : '/tasks#upload');
      }
    }
    if (created.length === 1) return res.redirect(303, `/tasks/${created[0]}`);
    setFlash(req, { type: 'success', message: `${created.length} documents are queued.` });
    res.redirect(303, '/tasks#tasks');
  });

  pages.get('/tasks/:id', requireAuth, async (req, res) => {
    await renderShow(req, res, taskIdOf(req), 200);
  });

  pages.post('/tasks/:id/retry', requireAuth, async (req, res) => {
    const id = taskIdOf(req);
    const body = (req.body ?? {}) as Record<string, unknown>;
    const key = schemas.idempotencyKey.safeParse(body.idempotencyKey);
    try {
      await service.retry(req.user!.id, id, key.success ? key.data : undefined);
    } catch (err) {
      const problem = asProblem(err);
      // 410: the upload was deleted under the retention policy, so there is nothing to read again
      if (problem && (problem.status === 402 || problem.status === 409 || problem.status === 410)) {
        const e = pageError(err, problem);
        setFlash(req, { type: 'error', message: e.message, ...(e.topUp ? { topUp: true } : {}) });
        return res.redirect(303, `/tasks/${id}`);
      }
      throw err;
    }
    setFlash(req, { type: 'success', message: 'The task is queued again.' });
    res.redirect(303, `/tasks/${id}`);
  });

  pages.post('/tasks/:id/delete', requireAuth, async (req, res) => {
    const id = taskIdOf(req);
    const task = await service.get(req.user!.id, id);
    await service.remove(req.user!.id, id);
    setFlash(req, { type: 'success', message: `Deleted ${task.fileName} and its files. Its credit history stays on your account.` });
    res.redirect(303, '/tasks');
  });

  return pages;
}
