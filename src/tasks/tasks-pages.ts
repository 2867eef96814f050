import crypto from 'node:crypto';
import express, { type Request, type Response } from 'express';
import type { SpendControls } from '../spend/spend-service.ts';
import { spendSettingsJson } from '../spend/spend-json.ts';
import { requireAuth } from '../auth/auth-middleware.ts';
import { setFlash, takeFlash } from '../auth/session.ts';
import type { Pricing } from '../credits/pricing-service.ts';
import { viewHelpers } from '../credits/view-helpers.ts';
import { asProblem } from '../http/domain-problems.ts';
import { type AppError, ValidationError } from '../http/errors.ts';
import { parseOrThrow, schemas } from '../http/validate.ts';
import { millicreditsToCredits } from '../ledger/credits.ts';
import { InsufficientCreditsError, SpendCapExceededError } from '../ledger/ledger-errors.ts';
import { taskIdOf } from './tasks-router.ts';
import { uploadDocument, uploadedFile } from './task-upload.ts';
import { taskJson, taskPageJson } from './tasks-json.ts';
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

export interface TasksPagesOptions {
  service: TasksService;
  pricing: Pricing;
  maxUploadBytes: number;
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
 * The /tasks pages (signed in). They work without JavaScript: the upload form posts multipart to
 * `POST /tasks` (CSRF token in the query string, since the body is multipart), which creates the
 * task and redirects to `/tasks/:id`. public/tasks.js adds the estimate-and-balance confirmation
 * step and live progress over server-sent events.
 */
export function createTasksPages(options: TasksPagesOptions): express.Router {
  const { service, pricing } = options;
  const upload = uploadDocument(options.maxUploadBytes);
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
    const olderParams = new URLSearchParams();
    if (statusFilter) olderParams.set('status', statusFilter);
    if (list.nextCursor) olderParams.set('cursor', list.nextCursor);
    res.status(status).render('tasks/index', {
      title: 'Tasks',
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
      idempotencyKey: crypto.randomUUID(),
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
    if (task.status === 'completed') {
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
      idempotencyKey: crypto.randomUUID(),
      fmt: viewHelpers,
    });
  }

  pages.get('/tasks', requireAuth, async (req, res) => {
    await renderIndex(req, res, 200);
  });

  pages.post('/tasks', requireAuth, async (req, res) => {
    try {
      await new Promise<void>((resolve, reject) => upload(req, res, (err?: unknown) => (err ? reject(err) : resolve())));
      const body = (req.body ?? {}) as Record<string, unknown>;
      const key = schemas.idempotencyKey.safeParse(body.idempotencyKey);
      const { language } = parseOrThrow(UploadFields, body, 'body');
      const { task } = await service.create(req.user!.id, { ...uploadedFile(req), language }, key.success ? key.data : undefined);
      // A repeated form whose task was deleted since: back to the list, nothing held again.
      res.redirect(303, task ? `/tasks/${task.id}` : '/tasks');
    } catch (err) {
      const problem = asProblem(err);
      if (problem && problem.status < 500 && problem.status !== 401 && (problem.status !== 403 || err instanceof SpendCapExceededError)) {
        return renderIndex(req, res, problem.status, pageError(err, problem));
      }
      throw err;
    }
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
      if (problem && (problem.status === 402 || problem.status === 409)) return renderShow(req, res, id, problem.status, pageError(err, problem));
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
