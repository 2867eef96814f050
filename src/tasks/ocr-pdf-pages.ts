import { createCanvas } from '@napi-rs/canvas';
import { getResolvedPDFJS } from 'unpdf';
import type { PDFPageProxy } from 'unpdf/pdfjs';
import { POINTS_PER_INCH, renderedSize } from './document-inspector.ts';
import { rgbaToGray, type GrayImage } from './ocr-raster.ts';

// A text layer counts when it holds at least this many letters or digits and is mostly made of
// them (fonts without a Unicode map yield symbols or U+FFFD instead of text).
const MIN_TEXT_LAYER_CHARACTERS = 16;
const MIN_TEXT_LAYER_ALPHANUMERIC_SHARE = 0.5;
// A scan covers (nearly) the whole page; a logo or a photo does not.
const FULL_PAGE_IMAGE_SHARE = 0.75;
// Over a full-page scan, a text layer of fewer words than this is a stamp, a header or a Bates
// number added after scanning, not the page's text: the scan is read instead.
const MAX_STAMP_WORDS = 30;

/** The text layer of a PDF page, in content order, whitespace tidied. */
export async function readTextLayer(page: PDFPageProxy): Promise<string> {
  const content = await page.getTextContent();
  let text = '';
  for (const item of content.items) {
    if ('str' in item) text += item.str + (item.hasEOL ? '\n' : '');
  }
  return tidyText(text);
}

/** True when a text layer holds real text (see the thresholds above). */
export function isMeaningfulText(text: string): boolean {
  const alphanumeric = text.match(/[\p{L}\p{N}]/gu)?.length ?? 0;
  const visible = text.match(/\S/gu)?.length ?? 0;
  return alphanumeric >= MIN_TEXT_LAYER_CHARACTERS && alphanumeric / visible >= MIN_TEXT_LAYER_ALPHANUMERIC_SHARE;
}

/** Whitespace-separated tokens that contain a letter or a digit. */
export function countWords(text: string): number {
  return text.split(/\s+/u).filter((token) => /[\p{L}\p{N}]/u.test(token)).length;
}

/** Trailing spaces off every line, runs of blank lines down to one, no blank start or end. */
export function tidyText(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t\f\v]+$/gm, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** What the page's images are: the largest one's share of the page, and its resolution. */
export interface PageImages {
  /** The largest image's area over the page's, 0–1 (clipped to 1). */
  largestShare: number;
  /** The resolution that image is drawn at, in dots per inch (its pixels over its size on the page). */
  largestDpi: number | undefined;
  /**
   * True when some text is painted visibly; false when all of it is invisible (render mode 3 or
   * 7, ISO 32000-1, 9.3.6), the way OCR software (Tesseract, OCRmyPDF) lays its text over a scan.
   */
  visibleText: boolean;
}

/**
 * Finds the images a page draws and at what size, by walking pdf.js's operator list with the
 * current transformation matrix (ISO 32000-1, 8.3.4: an image fills the unit square of the CTM
 * it is painted with). Inline images and image masks count as images; forms are entered.
 */
export async function readPageImages(page: PDFPageProxy): Promise<PageImages> {
  const { OPS } = await getResolvedPDFJS();
  const list = await page.getOperatorList();
  const view = page.view; // [x0, y0, x1, y1] in points
  const pageArea = Math.abs((view[2]! - view[0]!) * (view[3]! - view[1]!)) || 1;
  let ctm = [1, 0, 0, 1, 0, 0];
  let renderMode = 0;
  let visibleText = false;
  const stack: Array<{ ctm: number[]; renderMode: number }> = [];
  const showsText = new Set([OPS.showText, OPS.showSpacedText, OPS.nextLineShowText, OPS.nextLineSetSpacingShowText]);
  let largestShare = 0;
  let largestDpi: number | undefined;
  for (let index = 0; index < list.fnArray.length; index++) {
    const op = list.fnArray[index];
    const args = list.argsArray[index] as unknown[] | null;
    if (op === OPS.save) stack.push({ ctm, renderMode });
    else if (op === OPS.restore) ({ ctm, renderMode } = stack.pop() ?? { ctm, renderMode });
    else if (op === OPS.transform) ctm = multiply(ctm, args as number[]);
    else if (op === OPS.setTextRenderingMode) renderMode = Number(args?.[0] ?? 0);
    else if (op !== undefined && showsText.has(op)) visibleText ||= renderMode !== 3 && renderMode !== 7;
    else if (op === OPS.paintFormXObjectBegin) {
      stack.push({ ctm, renderMode });
      const matrix = args?.[0];
      if (Array.isArray(matrix) || ArrayBuffer.isView(matrix)) ctm = multiply(ctm, Array.from(matrix as ArrayLike<number>));
    } else if (op === OPS.paintFormXObjectEnd) ({ ctm, renderMode } = stack.pop() ?? { ctm, renderMode });
    else if (op === OPS.paintImageXObject || op === OPS.paintInlineImageXObject || op === OPS.paintImageMaskXObject) {
      const area = Math.abs(ctm[0]! * ctm[3]! - ctm[1]! * ctm[2]!);
      const share = Math.min(1, area / pageArea);
      if (share <= largestShare) continue;
      largestShare = share;
      const size = imagePixelSize(op === OPS.paintImageXObject ? args : (args?.[0] as unknown));
      const drawnWidthInches = Math.hypot(ctm[0]!, ctm[1]!) / POINTS_PER_INCH;
      largestDpi = size && drawnWidthInches > 0 ? size.width / drawnWidthInches : undefined;
    }
  }
  return { largestShare, largestDpi, visibleText };
}

/**
 * True when the page is a full-page scan whose text layer is only a few visible words: a stamp,
 * a header or a Bates number added after scanning, not the page's text. An invisible layer over a
 * scan is an earlier OCR's text, and is kept however short.
 */
export function isStampOverScan(images: PageImages, textLayer: string): boolean {
  return images.largestShare >= FULL_PAGE_IMAGE_SHARE && images.visibleText && countWords(textLayer) < MAX_STAMP_WORDS;
}

function imagePixelSize(args: unknown): { width: number; height: number } | undefined {
  // paintImageXObject: [objId, width, height]; inline images and masks: [{width, height, …}]
  if (Array.isArray(args) && typeof args[1] === 'number' && typeof args[2] === 'number') return { width: args[1], height: args[2] };
  if (args && typeof args === 'object' && 'width' in args && typeof args.width === 'number') {
    return { width: args.width, height: (args as { height?: number }).height ?? 0 };
  }
  return undefined;
}

function multiply(m: number[], n: number[]): number[] {
  // pdf.js Util.transform: the CTM after `cm n` is n × m
  return [
    m[0]! * n[0]! + m[2]! * n[1]!,
    m[1]! * n[0]! + m[3]! * n[1]!,
    m[0]! * n[2]! + m[2]! * n[3]!,
    m[1]! * n[2]! + m[3]! * n[3]!,
    m[0]! * n[4]! + m[2]! * n[5]! + m[4]!,
    m[1]! * n[4]! + m[3]! * n[5]! + m[5]!,
  ];
}

/** A page rendered for OCR. */
export interface RenderedPage {
  image: GrayImage;
  /** The resolution it was rendered at, dots per inch. */
  dpi: number;
  /** The scale used (device pixels per point), for mapping pixels back to the page. */
  scale: number;
}

/**
 * Renders a page to gray at `dpi`, lowered so that width × height ≤ `maxPixels`.
 *
 * @returns the image, the dpi actually used, and the scale
 */
export async function renderPage(page: PDFPageProxy, dpi: number, maxPixels: number): Promise<RenderedPage> {
  const natural = page.getViewport({ scale: 1 });
  const wanted = dpi / POINTS_PER_INCH;
  const fitting = Math.sqrt(maxPixels / Math.max(1, natural.width * natural.height));
  const scale = Math.min(wanted, fitting);
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
  const image = rgbaToGray(context.getImageData(0, 0, width, height).data, width, height);
  // free the native pixel buffer now rather than whenever the GC, blind to its size, gets to it
  canvas.width = 0;
  canvas.height = 0;
  return { image, dpi: scale * POINTS_PER_INCH, scale };
}

/**
 * pdf.js 5.6 (in unpdf 1.7) hands every font to the renderer through
 * `ArrayBuffer.prototype.transferToFixedLength` (ES2024), which Node 20 lacks: without it each
 * font fails and pages that draw text render blank. unpdf polyfills the other newer built-ins it
 * needs but not this one, so add it when missing, with the standard's behaviour (the source
 * buffer is detached).
 */
export function provideTransferToFixedLength(): void {
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
