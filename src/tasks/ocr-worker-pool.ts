import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createWorker, OEM, PSM, type Block, type Worker } from 'tesseract.js';
import { DEFAULT_OCR_LANGUAGE, OCR_LANGUAGE_CODES, type OcrLanguage } from './ocr-languages.ts';
import type { QuarterTurn } from './ocr-raster.ts';
import { DocumentRejectedError } from './tasks-errors.ts';

/** A rectangle in pixels of the image as recognized: left, top (inclusive), right, bottom (exclusive). */
export interface PixelBox {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** One recognized word. `confidence` is Tesseract's, 0–100; null for a word of a PDF's text layer. */
export interface OcrWord {
  text: string;
  bbox: PixelBox;
  confidence: number | null;
}

/** One text line, in reading order, with its words. */
export interface OcrLine {
  text: string;
  bbox: PixelBox;
  confidence: number | null;
  words: OcrWord[];
}

/** What Tesseract read on one image. */
export interface Recognition {
  /** The text in reading order (Tesseract's page layout analysis). */
  text: string;
  /** Tesseract's mean word confidence, 0–100 (0 when nothing was read). */
  confidence: number;
  lines: OcrLine[];
  /** A one-page PDF of the text as invisible text (`pdf: 'text-only'`) or over the image (`'with-image'`). */
  pdf?: Uint8Array;
}

export interface RecognizeOptions {
  language: OcrLanguage;
  /** The image's resolution in dots per inch; 0 lets Tesseract read it from the file or estimate it. */
  dpi: number;
  /** Also make Tesseract's own PDF of the page (its PDF renderer, invisible text in render mode 3). */
  pdf?: 'text-only' | 'with-image';
}

/** The orientation Tesseract's OSD found: turn the image clockwise by `turn` to make it upright. */
export interface Orientation {
  turn: QuarterTurn;
  /** OSD's orientation confidence (higher is surer; clear pages score above 10). */
  confidence: number;
}

export interface OcrWorkerPool {
  /** How many recognition workers run at once. */
  readonly size: number;
  /** Resolves once every worker has started (they start when the pool is made). */
  ready(): Promise<void>;
  /**
   * Reads one encoded image (PNG, JPEG, TIFF, WebP, PGM) with automatic page segmentation
   * (Tesseract PSM 3, what the command line does), on the first free worker, preferring one
   * already loaded with `language`.
   *
   * @throws {DocumentRejectedError} `corrupt` when the image cannot be decoded
   * @throws {Error} when the pool is closed or Tesseract fails (that worker is replaced)
   */
  recognize(image: Uint8Array, options: RecognizeOptions): Promise<Recognition>;
  /**
   * Tesseract's orientation and script detection (OSD, legacy engine, `osd` model) on one image.
   * @returns undefined when OSD found too little text to decide
   */
  detectOrientation(image: Uint8Array, dpi: number): Promise<Orientation | undefined>;
  /** Waits for running work, then terminates the workers. Idempotent. */
  close(): Promise<void>;
}

export interface OcrLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

const TESSERACT_READ_ERROR = 'Error attempting to read image';

interface Slot {
  worker: Worker;
  language: OcrLanguage;
  busy: boolean;
}

interface Waiting {
  language: OcrLanguage | undefined;
  run(slot: Slot): Promise<void>;
  reject(error: Error): void;
}

/**
 * The recognition workers of one process: `size` Tesseract workers (worker threads running
 * Tesseract's WebAssembly build with the LSTM models of {@link OCR_LANGUAGES}, read from the
 * installed `@tesseract.js-data/*` packages, nothing downloaded), plus one worker for orientation
 * detection. All start at once when the pool is made, so the first job does not wait for them.
 * Jobs queue in order; a worker loaded with the job's language is preferred, another one switches
 * language (a re-initialisation of a few hundred milliseconds).
 *
 * @param options.size recognition workers (≥ 1), typically one per core
 */
export function createOcrWorkerPool(options: { size: number; logger?: OcrLogger }): OcrWorkerPool {
  const size = Math.max(1, Math.floor(options.size));
  const { logger } = options;
  const slots: Slot[] = [];
  const waiting: Waiting[] = [];
  const running = new Set<Promise<unknown>>();
  let closed = false;
  const langPath = tessdataDirectory();

  function dispatch(): void {
    while (!closed && waiting.length > 0) {
      const idle = slots.filter((slot) => !slot.busy);
      if (idle.length === 0) return;
      const job = waiting.shift()!;
      const slot = idle.find((candidate) => candidate.language === job.language) ?? idle[0]!;
      slot.busy = true;
      const run = job.run(slot).finally(() => {
        slot.busy = false;
        running.delete(run);
        dispatch();
      });
      running.add(run);
    }
  }

  async function startSlot(): Promise<void> {
    const started = performance.now();
    const worker = await createWorker(DEFAULT_OCR_LANGUAGE, OEM.LSTM_ONLY, {
      langPath,
      gzip: true,
      cacheMethod: 'none',
      // Without an errorHandler, tesseract.js rethrows a failed job's error inside its message
      // listener, an uncaught exception that ends the process; the job's promise rejects anyway.
      errorHandler: () => undefined,
    });
    if (closed) {
      await worker.terminate();
      return;
    }
    slots.push({ worker, language: DEFAULT_OCR_LANGUAGE, busy: false });
    logger?.info({ durationMs: Math.round(performance.now() - started), workers: slots.length }, 'tesseract worker started');
    dispatch();
  }

  async function replace(slot: Slot): Promise<void> {
    const index = slots.indexOf(slot);
    if (index !== -1) slots.splice(index, 1);
    await slot.worker.terminate().catch(() => undefined);
    if (!closed) void startSlot().catch((error: unknown) => logger?.error({ err: error }, 'tesseract worker failed to restart'));
  }

  const starting = Promise.all(Array.from({ length: size }, () => startSlot()));
  starting.catch((error: unknown) => logger?.error({ err: error }, 'tesseract workers failed to start'));

  // OSD needs Tesseract's legacy engine and the `osd` model: a worker of its own, started with
  // the others. Its calls are short (≈ 0.5 s a page) and run one at a time.
  let osd: Promise<Worker> | undefined;
  let osdQueue: Promise<unknown> = Promise.resolve();
  const startOsd = () =>
    createWorker('osd', OEM.TESSERACT_ONLY, {
      langPath: modelDirectory('osd', '4.0.0'),
      gzip: true,
      cacheMethod: 'none',
      legacyCore: true,
      legacyLang: true,
      errorHandler: () => undefined,
    });
  osd = startOsd();
  osd.catch((error: unknown) => logger?.error({ err: error }, 'tesseract OSD worker failed to start'));

  return {
    size,

    async ready() {
      await starting;
      await osd;
    },

    recognize(image, recognizeOptions) {
      if (closed) return Promise.reject(new Error('The OCR worker pool is closed.'));
      return new Promise<Recognition>((resolve, reject) => {
        waiting.push({
          language: recognizeOptions.language,
          reject,
          run: async (slot) => {
            try {
              resolve(await recognizeOn(slot, image, recognizeOptions));
            } catch (error) {
              reject(error);
            }
          },
        });
        dispatch();
      });
    },

    detectOrientation(image, dpi) {
      if (closed) return Promise.reject(new Error('The OCR worker pool is closed.'));
      const run = osdQueue.then(async () => {
        osd ??= startOsd();
        const worker = await osd;
        try {
          // OSD reads the resolution from the image itself and warns on stderr when there is none
          await worker.setParameters({ user_defined_dpi: String(dpi), debug_file: '/dev/null' });
          const { data } = await worker.detect(Buffer.from(image.buffer, image.byteOffset, image.byteLength));
          if (data.orientation_degrees === null || data.orientation_confidence === null) return undefined;
          // OSD reports how far the text is turned counter-clockwise; turning the image clockwise
          // by as much makes it upright.
          return { turn: (data.orientation_degrees % 360) as QuarterTurn, confidence: data.orientation_confidence };
        } catch (failure) {
          const message = failure instanceof Error ? failure.message : String(failure);
          if (message.includes(TESSERACT_READ_ERROR)) {
            throw new DocumentRejectedError('corrupt', 'The image could not be decoded.', { cause: failure });
          }
          // OSD is a refinement: a page it cannot judge is read as it is
          logger?.warn({ err: message }, 'orientation detection failed; page read as it is');
          osd = undefined;
          await worker.terminate().catch(() => undefined);
          return undefined;
        }
      });
      osdQueue = run.catch(() => undefined);
      return run;
    },

    async close() {
      if (closed) return;
      closed = true;
      for (const job of waiting.splice(0)) job.reject(new Error('The OCR worker pool is closed.'));
      await Promise.allSettled([...running]);
      await starting.catch(() => undefined);
      await Promise.allSettled(slots.map((slot) => slot.worker.terminate()));
      slots.length = 0;
      await osdQueue;
      await osd?.then((worker) => worker.terminate()).catch(() => undefined);
    },
  };

  async function recognizeOn(slot: Slot, image: Uint8Array, options: RecognizeOptions): Promise<Recognition> {
    try {
      if (slot.language !== options.language) {
        await slot.worker.reinitialize(options.language, OEM.LSTM_ONLY);
        slot.language = options.language;
      }
      const parameters = {
        tessedit_pageseg_mode: PSM.AUTO,
        user_defined_dpi: String(options.dpi),
        // Tesseract's diagnostics ("Estimating resolution as …") would go to the process's stderr
        debug_file: '/dev/null',
        ...(options.pdf ? { pdfTextOnly: options.pdf === 'text-only', pdfTitle: 'Tally OCR' } : {}),
      };
      const { data } = await slot.worker.recognize(Buffer.from(image.buffer, image.byteOffset, image.byteLength), parameters, {
        text: true,
        blocks: true,
        pdf: options.pdf !== undefined,
        hocr: false,
        tsv: false,
      });
      const lines = linesOf(data.blocks);
      const words = lines.reduce((sum, line) => sum + line.words.length, 0);
      return {
        text: data.text,
        confidence: words > 0 ? data.confidence : 0,
        lines,
        ...(data.pdf ? { pdf: Uint8Array.from(data.pdf) } : {}),
      };
    } catch (failure) {
      // tesseract.js rejects with strings such as "Error: Error attempting to read image."
      const message = failure instanceof Error ? failure.message : String(failure);
      if (message.includes(TESSERACT_READ_ERROR)) {
        throw new DocumentRejectedError('corrupt', 'The image could not be decoded.', { cause: failure });
      }
      // the worker may be in any state now: replace it
      await replace(slot);
      throw new Error(`Tesseract failed: ${message}`, { cause: failure });
    }
  }
}

function linesOf(blocks: Block[] | null): OcrLine[] {
  const lines: OcrLine[] = [];
  for (const block of blocks ?? []) {
    for (const paragraph of block.paragraphs) {
      for (const line of paragraph.lines) {
        const words = line.words
          .filter((word) => word.text.trim() !== '')
          .map((word) => ({ text: word.text, bbox: box(word.bbox), confidence: round(word.confidence) }));
        if (words.length === 0) continue;
        lines.push({ text: line.text.trim(), bbox: box(line.bbox), confidence: round(line.confidence), words });
      }
    }
  }
  return lines;
}

function box(bbox: PixelBox): PixelBox {
  return { x0: bbox.x0, y0: bbox.y0, x1: bbox.x1, y1: bbox.y1 };
}

function round(confidence: number): number {
  return Math.round(confidence * 10) / 10;
}

/** The directory of `@tesseract.js-data/<code>`'s model of `flavour` (`4.0.0_best_int`: LSTM only). */
function modelDirectory(code: string, flavour: '4.0.0' | '4.0.0_best_int'): string {
  const require = createRequire(import.meta.url);
  return path.join(path.dirname(require.resolve(`@tesseract.js-data/${code}/package.json`)), flavour);
}

/**
 * tesseract.js reads every language from one `langPath`, but each model ships in its own npm
 * package: link them side by side in a directory under the system's temp dir (made once per
 * process, links replaced if stale). The "best_int" LSTM models are the ones tesseract.js itself
 * would fetch for OEM.LSTM_ONLY.
 */
function tessdataDirectory(): string {
  const dir = path.join(os.tmpdir(), `tally-tessdata-${process.getuid?.() ?? 'user'}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const code of OCR_LANGUAGE_CODES) {
    const link = path.join(dir, `${code}.traineddata.gz`);
    const target = path.join(modelDirectory(code, '4.0.0_best_int'), `${code}.traineddata.gz`);
    let current: string | undefined;
    try {
      current = fs.readlinkSync(link);
    } catch {
      current = undefined;
    }
    if (current === target) continue;
    const temporary = `${link}.${process.pid}.tmp`;
    fs.rmSync(temporary, { force: true });
    fs.symlinkSync(target, temporary);
    fs.renameSync(temporary, link);
  }
  return dir;
}
