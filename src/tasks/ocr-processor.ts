import { createRequire } from 'node:module';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { createCanvas } from '@napi-rs/canvas';
import { createWorker, OEM, type Worker } from 'tesseract.js';
import { createIsomorphicCanvasFactory } from 'unpdf';
import type { PDFPageProxy } from 'unpdf/pdfjs';
import {
  POINTS_PER_INCH,
  assertImageWithinLimit,
  assertPdfImagesWithinLimit,
  openPdf,
  readImageSize,
  readPdf,
  renderedSize,
  type DocumentKind,
} from './document-inspector.ts';
import { DocumentRejectedError } from './tasks-errors.ts';

/** The text of one page and how it was obtained. */
export interface OcrPageResult {
  /** 1-based page number. */
  page: number;
  text: string;
  /** Whitespace-separated tokens that contain a letter or a digit. */
  words: number;
  /** Tesseract's mean word confidence, 0–100; null for a text layer or a page without words. */
  confidence: number | null;
  /** `text-layer`: the PDF's own text; `ocr`: recognized by Tesseract. */
  source: 'text-layer' | 'ocr';
  /** Wall time spent on the page, in milliseconds. */
  durationMs: number;
}

/** The text of a whole document. */
export interface OcrResult {
  /** The pages' texts, separated by a blank line. */
  text: string;
  pages: OcrPageResult[];
  pageCount: number;
  words: number;
  /** Mean of the OCR pages' confidences weighted by their words, 0–100; null if no OCR word. */
  meanConfidence: number | null;
  /** Wall time for the document, in milliseconds. */
  durationMs: number;
}

/** Progress after each page: `page` of `pages` is done. */
export interface OcrProgress {
  page: number;
  pages: number;
}

/** The subset of a pino logger the processor uses. */
export interface OcrLogger {
  info(details: object, message: string): void;
  warn(details: object, message: string): void;
  error(details: object, message: string): void;
}

export interface OcrProcessorOptions {
  /** Resolution PDF pages are rendered at, in dots per inch. */
  renderDpi: number;
  /** Largest rendered page, image, or image embedded in a PDF, in pixels (width × height). */
  maxPagePixels: number;
  logger?: OcrLogger;
}

export interface OcrProcessor {
  /**
   * Extracts the text of a document, page by page, one document at a time (concurrent calls
   * queue). PDF pages with a meaningful text layer use it; other pages are rendered at
   * `renderDpi` (lower if the page would exceed `maxPagePixels`) and OCRed. Images are OCRed as
   * they are.
   *
   * @param bytes the file, already identified as `kind` (see `inspectDocument`)
   * @param onPage awaited after each page; an error it throws stops the processing and is rethrown
   * @throws {DocumentRejectedError} `corrupt`, `encrypted`, `empty`, `too_many_pixels`
   * @throws {Error} when the processor is closed, or Tesseract itself fails
   */
  process(
    bytes: Buffer | Uint8Array,
    kind: DocumentKind,
    onPage?: (progress: OcrProgress) => void | Promise<void>,
  ): Promise<OcrResult>;
  /** Waits for the calls already made, then terminates the Tesseract worker. Idempotent. */
  close(): Promise<void>;
}

// A text layer counts when it holds at least this many letters or digits and is mostly made of
// them (fonts without a Unicode map yield symbols or U+FFFD instead of text).
const MIN_TEXT_LAYER_CHARACTERS = 16;
const MIN_TEXT_LAYER_ALPHANUMERIC_SHARE = 0.5;
// Tesseract's credible resolutions (tesseract/src/ccmain/tesseractclass.h kMinCredibleResolution,
// kMaxCredibleResolution); outside them it warns and substitutes its own guess.
const MIN_TESSERACT_DPI = 70;
const MAX_TESSERACT_DPI = 2400;
const TESSERACT_READ_ERROR = 'Error attempting to read image';

/**
 * Creates the OCR processor of the worker. The Tesseract worker (a worker thread running
 * Tesseract's WebAssembly build, English LSTM model from `@tesseract.js-data/eng`, nothing
 * downloaded) starts on the first `process` call and is reused until `close()`.
 *
 * Memory stays bounded on hostile files: images larger than `maxPagePixels` are refused from
 * their header, pdf.js never decodes an embedded image larger than `maxPagePixels`, and pages are
 * rendered one at a time at a scale that keeps width × height ≤ `maxPagePixels`.
 *
 * @param options `renderDpi` in dots per inch, `maxPagePixels` in pixels, an optional pino logger
 */
export function createOcrProcessor(options: OcrProcessorOptions): OcrProcessor {
  const { renderDpi, maxPagePixels, logger } = options;
  let worker: Promise<Worker> | undefined;
  let queue: Promise<unknown> = Promise.resolve();
  let closed = false;

  function tesseract(): Promise<Worker> {
    worker ??= startTesseract(logger).catch((error: unknown) => {
      worker = undefined;
      throw error;
    });
    return worker;
  }

  async function discardTesseract(): Promise<void> {
    const current = worker;
    worker = undefined;
    await current?.then((started) => started.terminate()).catch(() => undefined);
  }

  /** OCRs one encoded image; `dpi` 0 lets Tesseract use the file's own resolution or estimate it. */
  async function recognize(image: Buffer, dpi: number): Promise<{ text: string; confidence: number }> {
    const ocr = await tesseract();
    try {
      await ocr.setParameters({ user_defined_dpi: String(dpi) });
      const { data } = await ocr.recognize(image, {}, { text: true, blocks: false, hocr: false, tsv: false });
      return { text: data.text, confidence: data.confidence };
    } catch (failure) {
      // tesseract.js rejects with strings such as "Error: Error attempting to read image."
      const message = failure instanceof Error ? failure.message : String(failure);
      if (message.includes(TESSERACT_READ_ERROR)) {
        throw new DocumentRejectedError('corrupt', 'The image could not be decoded.', { cause: failure });
      }
      // the worker may be in any state now: start a fresh one for the next page or document
      await discardTesseract();
      throw new Error(`Tesseract failed: ${message}`, { cause: failure });
    }
  }

  async function processImage(bytes: Buffer, kind: Exclude<DocumentKind, 'pdf'>): Promise<OcrPageResult> {
    const started = performance.now();
    assertImageWithinLimit(readImageSize(bytes, kind), maxPagePixels, 'The image');
    // PNG, JPEG, TIFF and WebP all decode in Tesseract's Leptonica as they are: no conversion
    const { text, confidence } = await recognize(bytes, 0);
    return ocrPage(1, text, confidence, started);
  }

  async function processPdf(bytes: Buffer, onPage: OnPage | undefined): Promise<OcrPageResult[]> {
    assertPdfImagesWithinLimit(bytes, maxPagePixels);
    provideTransferToFixedLength();
    const CanvasFactory = await createIsomorphicCanvasFactory(() => import('@napi-rs/canvas'));
    const pdf = await openPdf(bytes, { maxImageSize: maxPagePixels, CanvasFactory });
    try {
      const pages = pdf.numPages;
      if (pages === 0) throw new DocumentRejectedError('empty', 'The PDF has no pages.');
      const results: OcrPageResult[] = [];
      for (let pageNumber = 1; pageNumber <= pages; pageNumber++) {
        const started = performance.now();
        const unreadable = `Page ${pageNumber} of the PDF could not be read.`;
        const page = await readPdf(() => pdf.getPage(pageNumber), unreadable);
        try {
          const layer = await readPdf(() => readTextLayer(page), unreadable);
          if (isMeaningfulText(layer)) {
            const words = countWords(layer);
            results.push({ page: pageNumber, text: layer, words, confidence: null, source: 'text-layer', durationMs: elapsed(started) });
          } else {
            const rendered = await readPdf(() => renderPage(page, pageNumber), unreadable);
            const { text, confidence } = await recognize(rendered.image, rendered.dpi);
            results.push(ocrPage(pageNumber, text, confidence, started));
          }
        } finally {
          page.cleanup();
        }
        await onPage?.({ page: pageNumber, pages });
      }
      return results;
    } finally {
      await pdf.destroy();
    }
  }

  /** Renders a page to an 8-bit grayscale PGM (P5) image: Leptonica reads it without decoding work. */
  async function renderPage(page: PDFPageProxy, pageNumber: number): Promise<{ image: Buffer; dpi: number }> {
    const natural = page.getViewport({ scale: 1 });
    const wanted = renderDpi / POINTS_PER_INCH;
    const fitting = Math.sqrt(maxPagePixels / Math.max(1, natural.width * natural.height));
    const scale = Math.min(wanted, fitting);
    const dpi = scale * POINTS_PER_INCH;
    if (scale < wanted) {
      logger?.warn(
        { page: pageNumber, renderDpi, dpi: Math.floor(dpi), maxPagePixels },
        'page rendered below renderDpi to stay within maxPagePixels',
      );
    }
    const viewport = page.getViewport({ scale });
    const { width, height } = renderedSize(natural.width, natural.height, scale);
    const canvas = createCanvas(width, height);
    const context = canvas.getContext('2d');
    // pdf.js paints a white background first, so every pixel is opaque
    await page.render({
      canvas: canvas as unknown as HTMLCanvasElement,
      canvasContext: context as unknown as CanvasRenderingContext2D,
      viewport,
    }).promise;
    const rgba = context.getImageData(0, 0, width, height).data;
    // free the native pixel buffer now rather than whenever the GC, blind to its size, gets to it
    canvas.width = 0;
    canvas.height = 0;
    const header = Buffer.from(`P5\n${width} ${height}\n255\n`, 'latin1');
    const image = Buffer.allocUnsafe(header.length + width * height);
    header.copy(image);
    for (let pixel = 0, out = header.length, inp = 0; pixel < width * height; pixel++, out++, inp += 4) {
      // ITU-R BT.601 luma in 8-bit fixed point (77 + 150 + 29 = 256)
      image[out] = (rgba[inp]! * 77 + rgba[inp + 1]! * 150 + rgba[inp + 2]! * 29 + 128) >> 8;
    }
    return { image, dpi: Math.min(MAX_TESSERACT_DPI, Math.max(MIN_TESSERACT_DPI, Math.round(dpi))) };
  }

  return {
    process(bytes, kind, onPage) {
      if (closed) return Promise.reject(new Error('The OCR processor is closed.'));
      const file = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const run = queue.then(async () => {
        const started = performance.now();
        let pages: OcrPageResult[];
        if (kind === 'pdf') {
          pages = await processPdf(file, onPage);
        } else {
          pages = [await processImage(file, kind)];
          await onPage?.({ page: 1, pages: 1 });
        }
        return summarize(pages, started);
      });
      queue = run.catch(() => undefined);
      return run;
    },

    async close() {
      closed = true;
      await queue;
      await discardTesseract();
    },
  };
}

type OnPage = (progress: OcrProgress) => void | Promise<void>;

async function startTesseract(logger: OcrLogger | undefined): Promise<Worker> {
  const started = performance.now();
  // The LSTM-only "best_int" model, the one tesseract.js itself would fetch for OEM.LSTM_ONLY;
  // read from the installed package, never from a CDN. cacheMethod 'none': no copy in the cwd.
  const require = createRequire(import.meta.url);
  const langPath = path.join(path.dirname(require.resolve('@tesseract.js-data/eng/package.json')), '4.0.0_best_int');
  const worker = await createWorker('eng', OEM.LSTM_ONLY, {
    langPath,
    gzip: true,
    cacheMethod: 'none',
    // Without an errorHandler, tesseract.js rethrows a failed job's error inside its message
    // listener, an uncaught exception that ends the process; the job's promise rejects anyway.
    errorHandler: () => undefined,
  });
  logger?.info({ durationMs: elapsed(started) }, 'tesseract worker started');
  return worker;
}

/**
 * pdf.js 5.6 (in unpdf 1.7) hands every font to the renderer through
 * `ArrayBuffer.prototype.transferToFixedLength` (ES2024), which Node 20 lacks: without it each
 * font fails and pages that draw text render blank. unpdf polyfills the other newer built-ins it
 * needs but not this one, so add it when missing, with the standard's behaviour (the source
 * buffer is detached).
 */
function provideTransferToFixedLength(): void {
  if ('transferToFixedLength' in ArrayBuffer.prototype) return;
  Object.defineProperty(ArrayBuffer.prototype, 'transferToFixedLength', {
    value: function transferToFixedLength(this: ArrayBuffer, newLength?: number): ArrayBuffer {
      const length = newLength ?? this.byteLength;
      const moved = structuredClone(this, { transfer: [this] });
      if (length === moved.byteLength) return moved;
      const resized = new ArrayBuffer(length);
      new Uint8Array(resized).set(new Uint8Array(moved, 0, Math.min(length, moved.byteLength)));
      return resized;
    },
    writable: true,
    configurable: true,
  });
}

async function readTextLayer(page: PDFPageProxy): Promise<string> {
  const content = await page.getTextContent();
  let text = '';
  for (const item of content.items) {
    if ('str' in item) text += item.str + (item.hasEOL ? '\n' : '');
  }
  return tidy(text);
}

function isMeaningfulText(text: string): boolean {
  const alphanumeric = text.match(/[\p{L}\p{N}]/gu)?.length ?? 0;
  const visible = text.match(/\S/gu)?.length ?? 0;
  return alphanumeric >= MIN_TEXT_LAYER_CHARACTERS && alphanumeric / visible >= MIN_TEXT_LAYER_ALPHANUMERIC_SHARE;
}

function ocrPage(page: number, rawText: string, confidence: number, started: number): OcrPageResult {
  const text = tidy(rawText);
  const words = countWords(text);
  return { page, text, words, confidence: words > 0 ? confidence : null, source: 'ocr', durationMs: elapsed(started) };
}

function summarize(pages: OcrPageResult[], started: number): OcrResult {
  const words = pages.reduce((sum, page) => sum + page.words, 0);
  let weighted = 0;
  let ocrWords = 0;
  for (const page of pages) {
    if (page.confidence === null) continue;
    weighted += page.confidence * page.words;
    ocrWords += page.words;
  }
  return {
    text: pages.map((page) => page.text).join('\n\n'),
    pages,
    pageCount: pages.length,
    words,
    meanConfidence: ocrWords > 0 ? Math.round((weighted / ocrWords) * 10) / 10 : null,
    durationMs: elapsed(started),
  };
}

function tidy(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trimEnd())
    .join('\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

function countWords(text: string): number {
  return text.split(/\s+/u).filter((token) => /[\p{L}\p{N}]/u.test(token)).length;
}

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
