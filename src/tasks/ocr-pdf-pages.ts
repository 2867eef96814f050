import { createCanvas } from '@napi-rs/canvas';
import { getResolvedPDFJS } from 'unpdf';
import type { PDFPageProxy } from 'unpdf/pdfjs';
import { POINTS_PER_INCH, renderedSize } from './document-inspector.ts';
import { rgbaToGray, type GrayImage } from './ocr-raster.ts';
import type { OcrLine, OcrWord, PixelBox } from './ocr-worker-pool.ts';

// A text layer counts when it holds at least this many letters or digits and is mostly made of
// them (fonts without a Unicode map yield symbols or U+FFFD instead of text).
const MIN_TEXT_LAYER_CHARACTERS = 16;
const MIN_TEXT_LAYER_ALPHANUMERIC_SHARE = 0.5;
// A scan covers (nearly) the whole page; a logo or a photo does not.
const FULL_PAGE_IMAGE_SHARE = 0.75;
// Over a full-page scan, a text layer of fewer words than this is a stamp, a header or a Bates
// number added after scanning, not the page's text: the scan is read instead.
const MAX_STAMP_WORDS = 30;

/** A page's text layer: its text, and its lines and words with boxes. */
export interface TextLayer {
  /** In content order, whitespace tidied. */
  text: string;
  /** Boxes in pixels of the page at `scale` (as if rendered), confidence null. */
  lines: OcrLine[];
  /** The page's size in pixels at that scale. */
  width: number;
  height: number;
}

// Below the baseline a glyph reaches about a fifth of the font size (descenders).
const DESCENT = 0.2;

/**
 * The text layer of a PDF page (pdf.js text content), with each line's and word's box in pixels
 * of the page at `scale` pixels per point: a text item's box runs from its origin on the baseline
 * along its width, from a fifth of its height below the baseline to its height above; words share
 * their item's width in proportion to their characters. Exact for horizontal text; for rotated
 * text the box is the upright rectangle around the item's corners.
 */
export async function readTextLayer(page: PDFPageProxy, scale: number): Promise<TextLayer> {
  const content = await page.getTextContent();
  const viewport = page.getViewport({ scale });
  let text = '';
  const lines: OcrLine[] = [];
  let words: OcrWord[] = [];
  let lineText = '';
  const endLine = () => {
    if (words.length > 0) lines.push({ text: lineText.trim(), bbox: union(words.map((w) => w.bbox)), confidence: null, words });
    words = [];
    lineText = '';
  };
  for (const item of content.items) {
    if (!('str' in item)) continue;
    text += item.str + (item.hasEOL ? '\n' : '');
    lineText += item.str;
    const [a, b, c, d, e, f] = item.transform as number[];
    const length = Math.hypot(a!, b!) || 1;
    const along = [a! / length, b! / length]; // unit vector along the baseline
    const up = [-along[1]!, along[0]!];
    const height = item.height || Math.hypot(c!, d!);
    const chars = [...item.str].length || 1;
    for (const match of item.str.matchAll(/\S+/gu)) {
      const start = [...item.str.slice(0, match.index)].length / chars;
      const end = start + [...match[0]].length / chars;
      const corners = [
        [start, -DESCENT],
        [end, -DESCENT],
        [start, 1],
        [end, 1],
      ].map(([t, h]) => {
        const x = e! + along[0]! * t! * item.width + up[0]! * h! * height;
        const y = f! + along[1]! * t! * item.width + up[1]! * h! * height;
        return viewport.convertToViewportPoint(x, y) as [number, number];
      });
      words.push({ text: match[0], bbox: union(corners.map(([x, y]) => ({ x0: x, y0: y, x1: x, y1: y }))), confidence: null });
    }
    if (item.hasEOL) endLine();
  }
  endLine();
  return { text: tidyText(text), lines, width: Math.floor(viewport.width), height: Math.floor(viewport.height) };
}

function union(boxes: PixelBox[]): PixelBox {
  return {
    x0: Math.max(0, Math.floor(Math.min(...boxes.map((b) => b.x0)))),
    y0: Math.max(0, Math.floor(Math.min(...boxes.map((b) => b.y0)))),
    x1: Math.ceil(Math.max(...boxes.map((b) => b.x1))),
    y1: Math.ceil(Math.max(...boxes.map((b) => b.y1))),
  };
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
  /**
   * The page is nothing but one image XObject drawn upright (no other image, path or visible
   * text): a plain scan, whose pixels can be taken as they are instead of rendered.
   */
  soleImage?: { objId: string; ctm: number[] };
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
  const paintsPaths = new Set([
    OPS.fill, OPS.eoFill, OPS.stroke, OPS.closeStroke, OPS.fillStroke, OPS.eoFillStroke,
    OPS.closeFillStroke, OPS.closeEOFillStroke, OPS.shadingFill, OPS.rawFillPath, OPS.paintSolidColorImageMask,
  ]);
  let images = 0;
  let otherPaint = false;
  let first: { objId: string; ctm: number[] } | undefined;
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
    // a path that only clips (pdf.js folds the painting operator into constructPath) paints nothing
    else if (op === OPS.constructPath) otherPaint ||= args?.[0] !== OPS.endPath;
    else if (op !== undefined && paintsPaths.has(op)) otherPaint = true;
    else if (op === OPS.paintFormXObjectBegin) {
      stack.push({ ctm, renderMode });
      const matrix = args?.[0];
      if (Array.isArray(matrix) || ArrayBuffer.isView(matrix)) ctm = multiply(ctm, Array.from(matrix as ArrayLike<number>));
    } else if (op === OPS.paintFormXObjectEnd) ({ ctm, renderMode } = stack.pop() ?? { ctm, renderMode });
    else if (op === OPS.paintImageXObject || op === OPS.paintInlineImageXObject || op === OPS.paintImageMaskXObject) {
      images++;
      if (op === OPS.paintImageXObject && typeof args?.[0] === 'string') first ??= { objId: args[0], ctm };
      const area = Math.abs(ctm[0]! * ctm[3]! - ctm[1]! * ctm[2]!);
      const share = Math.min(1, area / pageArea);
      if (share <= largestShare) continue;
      largestShare = share;
      const size = imagePixelSize(op === OPS.paintImageXObject ? args : (args?.[0] as unknown));
      const drawnWidthInches = Math.hypot(ctm[0]!, ctm[1]!) / POINTS_PER_INCH;
      largestDpi = size && drawnWidthInches > 0 ? size.width / drawnWidthInches : undefined;
    }
  }
  const upright = first !== undefined && first.ctm[0]! > 0 && first.ctm[3]! > 0 && first.ctm[1] === 0 && first.ctm[2] === 0;
  const sole = images === 1 && !otherPaint && !visibleText && upright && page.rotate % 360 === 0;
  return { largestShare, largestDpi, visibleText, ...(sole && first ? { soleImage: first } : {}) };
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

/** A plain scan's own pixels, and where they sit on the page. */
export interface ScanImage {
  image: GrayImage;
  /** Maps a pixel of the image (x right, y down) to the page's user space, in points. */
  toPage(x: number, y: number): [number, number];
}

/**
 * The pixels of a page that is a plain scan (see {@link PageImages.soleImage}), as pdf.js decoded
 * them for the operator list, in gray: no rendering, no resampling, the scan's own resolution.
 * Rendering a 9000 × 9000 scan through a canvas takes seconds of the main thread; this takes a copy.
 *
 * @returns undefined when pdf.js has no pixel data for it (the caller renders the page instead)
 */
export async function readScanImage(page: PDFPageProxy, sole: NonNullable<PageImages['soleImage']>): Promise<ScanImage | undefined> {
  const store = sole.objId.startsWith('g_') ? page.commonObjs : page.objs;
  const decoded = await new Promise<unknown>((resolve) => {
    try {
      store.get(sole.objId, resolve);
    } catch {
      resolve(undefined);
    }
  });
  const { width, height, data } = (decoded ?? {}) as { width?: number; height?: number; data?: Uint8Array | Uint8ClampedArray };
  if (!width || !height || !data) return undefined;
  const pixels = width * height;
  let image: GrayImage;
  if (data.length === ((width + 7) >> 3) * height) {
    // pdf.js GRAYSCALE_1BPP: rows padded to a byte, a set bit is white
    const gray = new Uint8Array(pixels);
    const rowBytes = (width + 7) >> 3;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) gray[y * width + x] = data[y * rowBytes + (x >> 3)]! & (128 >> (x & 7)) ? 255 : 0;
    }
    image = { width, height, data: gray };
  } else if (data.length === pixels * 4) {
    image = rgbaToGray(data, width, height);
  } else if (data.length === pixels * 3) {
    const gray = new Uint8Array(pixels);
    for (let i = 0, j = 0; i < pixels; i++, j += 3) gray[i] = (data[j]! * 77 + data[j + 1]! * 150 + data[j + 2]! * 29 + 128) >> 8;
    image = { width, height, data: gray };
  } else if (data.length === pixels) {
    image = { width, height, data: Uint8Array.from(data) };
  } else {
    return undefined;
  }
  // the image fills the unit square of its CTM, its first row at the top (ISO 32000-1, 8.9.5)
  const [a, , , d, e, f] = sole.ctm as [number, number, number, number, number, number];
  return { image, toPage: (x, y) => [e + (x / width) * a, f + (1 - y / height) * d] };
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
