import { performance } from 'node:perf_hooks';
import { createIsomorphicCanvasFactory } from 'unpdf';
import type { PDFPageProxy } from 'unpdf/pdfjs';
import { assertImageWithinLimit, assertPdfImagesWithinLimit, openPdf, POINTS_PER_INCH, readImageSize, readPdf, type DocumentKind } from './document-inspector.ts';
import { DEFAULT_OCR_LANGUAGE, guessOcrLanguage, type OcrLanguage } from './ocr-languages.ts';
import {
  countWords,
  isMeaningfulText,
  isStampOverScan,
  provideTransferToFixedLength,
  readPageImages,
  readScanImage,
  readTextLayer,
  renderPage,
  tidyText,
  type TextLayer,
} from './ocr-pdf-pages.ts';
import { decodeImage, decodeTiffPage, inkShare, rotateGray, shrinkGray, tiffPageSizes, toPgm, unrotatePoint, type GrayImage, type QuarterTurn } from './ocr-raster.ts';
import { joinPagePdfs, overlayTextLayers, type TextOverlay } from './ocr-searchable-pdf.ts';
import { createOcrWorkerPool, type OcrLine, type OcrLogger, type OcrWorkerPool, type Recognition } from './ocr-worker-pool.ts';
import { DocumentRejectedError } from './tasks-errors.ts';

export type { OcrLogger } from './ocr-worker-pool.ts';

/**
 * How a page was read, which is also how it is priced: `text-layer` from the PDF's own text,
 * `ocr` recognized by Tesseract, `blank` nothing to read (no text found and no ink on the page).
 */
export type PageSource = 'text-layer' | 'ocr' | 'blank';

/** The text of one page and how it was obtained. */
export interface OcrPageResult {
  /** 1-based page number. */
  page: number;
  text: string;
  /** Whitespace-separated tokens that contain a letter or a digit. */
  words: number;
  /** Tesseract's mean word confidence, 0–100; null for a text layer or a page without words. */
  confidence: number | null;
  /** True when `confidence` is below the processor's `lowConfidence` threshold: check this page. */
  lowConfidence: boolean;
  source: PageSource;
  /** The language the page was read in (null for a text layer). */
  language: OcrLanguage | null;
  /** The quarter turn (degrees clockwise) applied before recognition, from Tesseract's OSD. */
  rotation: QuarterTurn;
  /** Size in pixels of the page as processed (after rendering and rotation; a text layer's page at renderDpi). */
  width: number;
  height: number;
  /** Lines in reading order, with words and boxes in pixels of the page as processed. */
  lines: OcrLine[];
  /** Wall time spent on the page, in milliseconds (pages overlap: they run in parallel). */
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
  /** The searchable PDF (asked for with `searchablePdf`), or undefined when it could not be made. */
  searchablePdf?: Uint8Array;
}

/** Progress after each page: `page` of `pages` is done (reported in page order). */
export interface OcrProgress {
  page: number;
  pages: number;
}

export interface OcrProcessOptions {
  /** Read every OCR page in this language; when absent, English, or the language a page looks like. */
  language?: OcrLanguage | null;
  /** Also build the searchable PDF (default false). */
  searchablePdf?: boolean;
}

export interface OcrProcessorOptions {
  /** Resolution PDF pages without a text layer are rendered at, in dots per inch. */
  renderDpi: number;
  /** Largest rendered page, image, or image embedded in a PDF, in pixels (width × height). */
  maxPagePixels: number;
  /** The shared worker pool; when absent the processor makes (and closes) its own of `workers`. */
  pool?: OcrWorkerPool;
  /** Size of the processor's own pool (default 1). */
  workers?: number;
  /** OCR pages whose mean confidence is below this (0–100) are flagged. Default 60. */
  lowConfidence?: number;
  logger?: OcrLogger;
}

export interface OcrProcessor {
  /**
   * Extracts the text of a document, page by page. PDF pages with a meaningful text layer use
   * it (unless it is only a stamp over a full-page scan); other pages are rendered at
   * `renderDpi`, or at the scan's own resolution when that is higher (within `maxPagePixels`),
   * turned upright after Tesseract's orientation detection, and read with automatic layout
   * analysis. Pages are recognized in parallel on the pool while the next page renders.
   *
   * @param bytes the file, already identified as `kind` (see `inspectDocument`)
   * @param onPage awaited after each page, in page order; an error it throws stops the processing
   *   (pages already started finish first) and is rethrown
   * @throws {DocumentRejectedError} `corrupt`, `encrypted`, `empty`, `too_many_pixels`
   * @throws {Error} when the processor is closed, or Tesseract itself fails
   */
  process(
    bytes: Buffer | Uint8Array,
    kind: DocumentKind,
    onPage?: (progress: OcrProgress) => void | Promise<void>,
    options?: OcrProcessOptions,
  ): Promise<OcrResult>;
  /** Waits for the calls already made, then closes its own pool (not a shared one). Idempotent. */
  close(): Promise<void>;
}

type OnPage = (progress: OcrProgress) => void | Promise<void>;

// Tesseract's credible resolutions (tesseract/src/ccmain/tesseractclass.h kMinCredibleResolution,
// kMaxCredibleResolution); outside them it warns and substitutes its own guess.
const MIN_TESSERACT_DPI = 70;
const MAX_TESSERACT_DPI = 2400;
// A scan's own resolution is used up to this; beyond, the time grows and the text does not improve.
const MAX_NATIVE_DPI = 600;
// An image covering at least this share of the page is "the scan" whose resolution counts.
const SCAN_PAGE_SHARE = 0.5;
// OSD's orientation confidence below which a page is read as it is (clear pages score 10–40;
// the OCRmyPDF default threshold is 14 on the same scale, but its pages are already upright
// most of the time, so a lower bar is safer for sideways scans).
const MIN_ORIENTATION_CONFIDENCE = 5;
// Largest image OSD is given; larger pages are shrunk by a whole factor first.
const OSD_MAX_PIXELS = 4_000_000;
// A page without text is blank when fewer than this share of its pixels are ink.
const MAX_BLANK_INK_SHARE = 0.001;
const DEFAULT_LOW_CONFIDENCE = 60;

/** One image to read: what Tesseract gets when it is upright, and its pixels on demand. */
interface PageImage {
  encoded: Uint8Array;
  /** dots per inch; 0 when unknown (Tesseract reads the file's own or estimates it) */
  dpi: number;
  width: number;
  height: number;
  pixels(): Promise<GrayImage>;
}

interface PageRead {
  text: string;
  recognition: Recognition;
  language: OcrLanguage;
  turn: QuarterTurn;
  width: number;
  height: number;
  blank: boolean;
}

/**
 * Creates the OCR processor of the worker. Recognition runs on an {@link OcrWorkerPool}
 * (Tesseract's WebAssembly build in worker threads, models from the `@tesseract.js-data/*`
 * packages, nothing downloaded); rendering (pdf.js) runs on the calling thread.
 *
 * Memory stays bounded on hostile files: images larger than `maxPagePixels` are refused from
 * their header, pdf.js never decodes an embedded image larger than `maxPagePixels`, pages are
 * rendered at a scale that keeps width × height ≤ `maxPagePixels`, and at most one page more than
 * the pool has workers is held rendered at a time.
 */
export function createOcrProcessor(options: OcrProcessorOptions): OcrProcessor {
  const { renderDpi, maxPagePixels, logger } = options;
  const ownPool = options.pool === undefined;
  const pool = options.pool ?? createOcrWorkerPool({ size: options.workers ?? 1, ...(logger ? { logger } : {}) });
  const lowConfidence = options.lowConfidence ?? DEFAULT_LOW_CONFIDENCE;
  const running = new Set<Promise<unknown>>();
  let closed = false;

  /** Orientation, then recognition in the asked language, or English then the language the page looks like. */
  async function readImage(image: PageImage, language: OcrLanguage | null | undefined, pdf: 'text-only' | 'with-image' | undefined): Promise<PageRead> {
    // OSD judges letter shapes, which it sees as well at half the resolution: on a large page it
    // gets a smaller copy (its time grows with the pixels: 8 s for a 9000 × 9000 scan in full).
    // It needs a resolution; for an image that states none, a scan's usual 300 dpi will do.
    let osdInput = image.encoded;
    let osdDpi = image.dpi || 300;
    if (image.width * image.height > OSD_MAX_PIXELS) {
      const small = shrinkGray(await image.pixels(), OSD_MAX_PIXELS);
      osdInput = toPgm(small.image);
      osdDpi = Math.max(MIN_TESSERACT_DPI, Math.round(osdDpi / small.factor));
    }
    const orientation = await pool.detectOrientation(osdInput, osdDpi);
    const turn = orientation && orientation.confidence >= MIN_ORIENTATION_CONFIDENCE ? orientation.turn : 0;
    let input = image.encoded;
    let pixels: GrayImage | undefined;
    let { width, height } = image;
    if (turn !== 0) {
      pixels = rotateGray(await image.pixels(), turn);
      input = toPgm(pixels);
      ({ width, height } = pixels);
    }
    const first = language ?? DEFAULT_OCR_LANGUAGE;
    let recognition = await pool.recognize(input, { language: first, dpi: image.dpi, ...(pdf ? { pdf } : {}) });
    let used = first;
    if (!language) {
      const guess = guessOcrLanguage(recognition.text);
      if (guess && guess !== first) {
        recognition = await pool.recognize(input, { language: guess, dpi: image.dpi, ...(pdf ? { pdf } : {}) });
        used = guess;
      }
    }
    const text = tidyText(recognition.text);
    let blank = false;
    if (countWords(text) === 0) {
      pixels ??= await image.pixels();
      blank = inkShare(pixels) < MAX_BLANK_INK_SHARE;
    }
    return { text, recognition, language: used, turn, width, height, blank };
  }

  function pageResult(page: number, read: PageRead, started: number): OcrPageResult {
    const words = countWords(read.text);
    const confidence = words > 0 ? Math.round(read.recognition.confidence * 10) / 10 : null;
    return {
      page,
      text: read.text,
      words,
      confidence,
      lowConfidence: confidence !== null && confidence < lowConfidence,
      source: read.blank ? 'blank' : 'ocr',
      language: read.language,
      rotation: read.turn,
      width: read.width,
      height: read.height,
      lines: read.recognition.lines,
      durationMs: elapsed(started),
    };
  }

  async function processImage(bytes: Buffer, kind: Exclude<DocumentKind, 'pdf'>, onPage: OnPage | undefined, options: OcrProcessOptions): Promise<{ pages: OcrPageResult[]; pdf?: Uint8Array }> {
    const pdfMode = options.searchablePdf ? 'with-image' : undefined;
    // each page is decoded when its turn comes, so a long TIFF never sits decoded in memory
    const images: Array<() => Promise<PageImage>> = [];
    if (kind === 'tiff') {
      // every page of a multi-page TIFF, decoded with UTIF (Tesseract would read only the first)
      const sizes = tiffPageSizes(bytes);
      sizes.forEach((size, index) => {
        assertImageWithinLimit(size, maxPagePixels, sizes.length > 1 ? `Page ${index + 1} of the TIFF image` : 'The image');
        images.push(async () => {
          const pixels = decodeTiffPage(bytes, index);
          return { encoded: toPgm(pixels), dpi: 0, width: pixels.width, height: pixels.height, pixels: async () => pixels };
        });
      });
    } else {
      const size = readImageSize(bytes, kind);
      assertImageWithinLimit(size, maxPagePixels, 'The image');
      // PNG, JPEG and WebP decode in Tesseract's Leptonica as they are, as the command line reads them
      images.push(async () => ({ encoded: bytes, dpi: 0, ...size, pixels: () => decodeImage(bytes) }));
    }
    const pages = await inParallel(images.length, pool.size + 1, onPage, async (index, rendered) => {
      const started = performance.now();
      const image = await images[index]!();
      rendered();
      const read = await readImage(image, options.language, pdfMode);
      return { result: pageResult(index + 1, read, started), pdf: read.recognition.pdf };
    });
    let pdf: Uint8Array | undefined;
    if (pdfMode) pdf = await buildOrWarn(() => joinPagePdfs(pages.map((page) => page.pdf).filter((bytes): bytes is Uint8Array => bytes !== undefined)));
    return { pages: pages.map((page) => page.result), ...(pdf ? { pdf } : {}) };
  }

  async function processPdf(bytes: Buffer, onPage: OnPage | undefined, options: OcrProcessOptions): Promise<{ pages: OcrPageResult[]; pdf?: Uint8Array }> {
    assertPdfImagesWithinLimit(bytes, maxPagePixels);
    provideTransferToFixedLength();
    const CanvasFactory = await createIsomorphicCanvasFactory(() => import('@napi-rs/canvas'));
    const document = await openPdf(bytes, { maxImageSize: maxPagePixels, CanvasFactory });
    const overlays: TextOverlay[] = [];
    try {
      const count = document.numPages;
      if (count === 0) throw new DocumentRejectedError('empty', 'The PDF has no pages.');
      const pages = await inParallel(count, pool.size + 1, onPage, async (index, rendered) => {
        const pageNumber = index + 1;
        const started = performance.now();
        const unreadable = `Page ${pageNumber} of the PDF could not be read.`;
        // the rendering part runs one page at a time, in order, on this thread; `rendered()` lets
        // the next page start while this one is recognized
        let page: PDFPageProxy | undefined = await readPdf(() => document.getPage(pageNumber), unreadable);
        try {
          const layer = await readPdf(() => readTextLayer(page!, renderDpi / POINTS_PER_INCH), unreadable);
          const images = await readPdf(() => readPageImages(page!), unreadable);
          if (isMeaningfulText(layer.text) && !isStampOverScan(images, layer.text)) {
            rendered();
            return textLayerPage(pageNumber, layer, started);
          }
          const native = images.largestShare >= SCAN_PAGE_SHARE && images.largestDpi ? Math.min(MAX_NATIVE_DPI, images.largestDpi) : 0;
          // A plain scan at least as fine as renderDpi is read from its own pixels; anything else
          // (or a coarser scan, which Tesseract reads better enlarged) is rendered.
          const scan = images.soleImage && native >= renderDpi - 0.5 && images.largestDpi! <= MAX_NATIVE_DPI
            ? await readPdf(() => readScanImage(page!, images.soleImage!), unreadable)
            : undefined;
          let image: GrayImage;
          let dpi: number;
          let toPage: (x: number, y: number) => [number, number];
          if (scan) {
            ({ image, toPage } = scan);
            dpi = native;
          } else {
            const render = await readPdf(() => renderPage(page!, Math.max(renderDpi, native), maxPagePixels), unreadable);
            if (render.dpi < renderDpi - 0.5) {
              logger?.warn({ page: pageNumber, renderDpi, dpi: Math.floor(render.dpi), maxPagePixels }, 'page rendered below renderDpi to stay within maxPagePixels');
            }
            const viewport = page.getViewport({ scale: render.scale });
            image = render.image;
            dpi = render.dpi;
            toPage = (x, y) => viewport.convertToPdfPoint(x, y) as [number, number];
          }
          page.cleanup();
          page = undefined;
          rendered();
          const read = await readImage(
            { encoded: toPgm(image), dpi: clampDpi(dpi), width: image.width, height: image.height, pixels: async () => image },
            options.language,
            options.searchablePdf ? 'text-only' : undefined,
          );
          const result = pageResult(pageNumber, read, started);
          if (read.recognition.pdf && result.words > 0) {
            overlays.push({
              pageIndex: index,
              textPdf: read.recognition.pdf,
              image: { width: read.width, height: read.height },
              toPage: (x, y) => {
                const [px, py] = unrotatePoint(x, y, read.turn, image.width, image.height);
                return toPage(px, py);
              },
            });
          }
          return result;
        } finally {
          page?.cleanup();
        }
      });
      let pdf: Uint8Array | undefined;
      if (options.searchablePdf) pdf = await buildOrWarn(() => overlayTextLayers(bytes, overlays.sort((a, b) => a.pageIndex - b.pageIndex)));
      return { pages, ...(pdf ? { pdf } : {}) };
    } finally {
      await document.destroy();
    }
  }

  async function buildOrWarn(build: () => Promise<Uint8Array>): Promise<Uint8Array | undefined> {
    try {
      return await build();
    } catch (error) {
      // The text is what was paid for; a PDF pdf-lib cannot rewrite only loses the PDF output.
      logger?.warn({ err: error }, 'searchable PDF could not be made');
      return undefined;
    }
  }

  return {
    process(bytes, kind, onPage, processOptions = {}) {
      if (closed) return Promise.reject(new Error('The OCR processor is closed.'));
      const file = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      const run = (async () => {
        const started = performance.now();
        const { pages, pdf } = kind === 'pdf' ? await processPdf(file, onPage, processOptions) : await processImage(file, kind, onPage, processOptions);
        return { ...summarize(pages, started), ...(pdf ? { searchablePdf: pdf } : {}) };
      })();
      running.add(run);
      void run.finally(() => running.delete(run)).catch(() => undefined);
      return run;
    },

    async close() {
      closed = true;
      await Promise.allSettled([...running]);
      if (ownPool) await pool.close();
    },
  };
}

function clampDpi(dpi: number): number {
  return Math.min(MAX_TESSERACT_DPI, Math.max(MIN_TESSERACT_DPI, Math.round(dpi)));
}

function textLayerPage(page: number, layer: TextLayer, started: number): OcrPageResult {
  return {
    page,
    text: layer.text,
    words: countWords(layer.text),
    confidence: null,
    lowConfidence: false,
    source: 'text-layer',
    language: null,
    rotation: 0,
    // the page as it would be rendered at renderDpi: the frame of its words' boxes
    width: layer.width,
    height: layer.height,
    lines: layer.lines,
    durationMs: elapsed(started),
  };
}

/**
 * Runs `work` for items 0…count-1 with at most `limit` at once, starting them in order: item
 * i+1 starts once item i has called `rendered()` (or finished) and fewer than `limit` are in
 * flight. `onPage` is awaited for each item in order as soon as it and all before it are done.
 * The first error (from `work` or `onPage`) stops new items; those in flight finish; it is rethrown.
 */
async function inParallel<T>(
  count: number,
  limit: number,
  onPage: OnPage | undefined,
  work: (index: number, rendered: () => void) => Promise<T>,
): Promise<T[]> {
  const results: T[] = new Array(count);
  const finished = new Array<boolean>(count).fill(false);
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let reported = 0;
  let reporting: Promise<void> = Promise.resolve();

  const report = () => {
    reporting = reporting.then(async () => {
      while (!failure && reported < count && finished[reported]) {
        reported++;
        try {
          await onPage?.({ page: reported, pages: count });
        } catch (error) {
          failure ??= { error };
        }
      }
    });
  };

  for (let index = 0; index < count && !failure; index++) {
    while (inFlight.size >= limit) await Promise.race(inFlight);
    if (failure) break;
    let markRendered!: () => void;
    const renderedSignal = new Promise<void>((resolve) => (markRendered = resolve));
    const task: Promise<void> = work(index, markRendered).then(
      (value) => {
        results[index] = value;
        finished[index] = true;
        report();
      },
      (error: unknown) => {
        failure ??= { error };
      },
    );
    const tracked = task.finally(() => {
      markRendered();
      inFlight.delete(tracked);
    });
    inFlight.add(tracked);
    await Promise.race([renderedSignal, tracked]);
  }
  await Promise.all(inFlight);
  report();
  await reporting;
  if (failure) throw failure.error;
  return results;
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

function elapsed(started: number): number {
  return Math.round(performance.now() - started);
}
