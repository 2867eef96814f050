import { fileTypeFromBuffer } from 'file-type';
import { getDocumentProxy } from 'unpdf';
import type { PDFDocumentProxy } from 'unpdf/pdfjs';
import { tiffPageSizes } from './ocr-raster.ts';
import { DocumentRejectedError } from './tasks-errors.ts';

/** The document types the OCR job accepts. */
export type DocumentKind = 'pdf' | 'png' | 'jpeg' | 'tiff' | 'webp';

/** What {@link inspectDocument} found: the type read from the content, and the page count. */
export interface DocumentInfo {
  kind: DocumentKind;
  /** The canonical media type of `kind`, e.g. `application/pdf`. */
  mimeType: string;
  /** Pages to process: a PDF's page count, 1 for an image. */
  pages: number;
}

/** Size limits applied to a document and each of its pages. */
export interface DocumentLimits {
  /** Largest page, or image embedded in a PDF, in pixels (width × height). */
  maxPagePixels: number;
  /** Resolution PDF pages are rendered at for OCR, in dots per inch. */
  renderDpi: number;
  /**
   * Most pages a PDF may have; unlimited when absent. Worth setting: pdf.js finds a page in time
   * proportional to its index when a file lists every page in one flat array, so visiting each
   * page of a 2 MB file with 20 000 pages takes over a minute (measured: 74 s).
   */
  maxPages?: number;
}

/** Pixel dimensions of an image. */
export interface PixelSize {
  width: number;
  height: number;
}

const MIME_TYPES: Record<DocumentKind, string> = {
  pdf: 'application/pdf',
  png: 'image/png',
  jpeg: 'image/jpeg',
  tiff: 'image/tiff',
  webp: 'image/webp',
};

// file-type's extension → our kind. An animated PNG is still a PNG whose first frame is the page.
const KINDS_BY_EXTENSION: Record<string, DocumentKind> = {
  pdf: 'pdf',
  png: 'png',
  apng: 'png',
  jpg: 'jpeg',
  tif: 'tiff',
  webp: 'webp',
};

/** PDF user space is measured in points: 72 to the inch (ISO 32000-1, 8.3.2.3). */
export const POINTS_PER_INCH = 72;

/**
 * Decides what a document is from its content (magic bytes, never a file name), counts its
 * pages and checks them against the limits, without rendering or decoding anything.
 *
 * - Images (PNG, JPEG, WebP) are one page; their pixel dimensions come from the header. A TIFF
 *   has one page per image file directory (multi-page TIFF), each checked the same way.
 * - A PDF's page count and page sizes come from pdf.js; each page's size at `renderDpi` must
 *   fit `maxPagePixels`, and so must every image the file embeds (see {@link findLargestPdfImage}).
 *
 * @param bytes the uploaded file
 * @param limits `maxPagePixels` in pixels, `renderDpi` in dots per inch, optional `maxPages`
 * @returns the kind, its media type and the number of pages
 * @throws {DocumentRejectedError} `empty` (no bytes, or a PDF without pages), `unsupported_type`,
 *   `corrupt` (unreadable header or PDF structure), `encrypted` (a PDF that needs a password to
 *   open), `too_many_pixels` (a page or embedded image over `maxPagePixels`), `too_many_pages`
 *   (a PDF with more than `maxPages` pages)
 */
export async function inspectDocument(bytes: Buffer | Uint8Array, limits: DocumentLimits): Promise<DocumentInfo> {
  if (bytes.byteLength === 0) {
    throw new DocumentRejectedError('empty', 'The file is empty.');
  }
  const kind = await detectKind(bytes);
  if (kind === 'pdf') {
    return { kind, mimeType: MIME_TYPES.pdf, pages: await inspectPdf(bytes, limits) };
  }
  if (kind === 'tiff') {
    // a TIFF may hold many pages (a fax, a scanner's batch): each is a page to read and to price
    readImageSize(bytes, kind); // the header's own checks first (BigTIFF, truncation)
    const sizes = tiffPageSizes(bytes);
    if (limits.maxPages !== undefined && sizes.length > limits.maxPages) {
      throw new DocumentRejectedError(
        'too_many_pages',
        `The TIFF image has ${sizes.length.toLocaleString('en-US')} pages; the limit is ${limits.maxPages.toLocaleString('en-US')}.`,
      );
    }
    sizes.forEach((size, index) =>
      assertImageWithinLimit(size, limits.maxPagePixels, sizes.length > 1 ? `Page ${index + 1} of the TIFF image` : 'The image'),
    );
    return { kind, mimeType: MIME_TYPES[kind], pages: sizes.length };
  }
  const size = readImageSize(bytes, kind);
  assertImageWithinLimit(size, limits.maxPagePixels, 'The image');
  return { kind, mimeType: MIME_TYPES[kind], pages: 1 };
}

async function detectKind(bytes: Uint8Array): Promise<DocumentKind> {
  let detected: { ext: string; mime: string } | undefined;
  try {
    detected = await fileTypeFromBuffer(bytes);
  } catch {
    // file-type gives up on some malformed containers; to us that is simply not a known type
    detected = undefined;
  }
  const kind = detected ? KINDS_BY_EXTENSION[detected.ext] : undefined;
  if (!kind) {
    const what = detected ? `${detected.mime} files are` : 'This type of file is';
    throw new DocumentRejectedError(
      'unsupported_type',
      `${what} not supported. Upload a PDF or a PNG, JPEG, TIFF or WebP image.`,
    );
  }
  return kind;
}

async function inspectPdf(bytes: Uint8Array, limits: DocumentLimits): Promise<number> {
  assertPdfImagesWithinLimit(bytes, limits.maxPagePixels);
  const pdf = await openPdf(bytes, { maxImageSize: limits.maxPagePixels });
  try {
    const pages = pdf.numPages;
    if (pages === 0) {
      throw new DocumentRejectedError('empty', 'The PDF has no pages.');
    }
    if (limits.maxPages !== undefined && pages > limits.maxPages) {
      throw new DocumentRejectedError(
        'too_many_pages',
        `The PDF has ${pages.toLocaleString('en-US')} pages; the limit is ${limits.maxPages.toLocaleString('en-US')}.`,
      );
    }
    for (let pageNumber = 1; pageNumber <= pages; pageNumber++) {
      const page = await readPdf(() => pdf.getPage(pageNumber), `Page ${pageNumber} of the PDF could not be read.`);
      const viewport = page.getViewport({ scale: 1 });
      const size = renderedSize(viewport.width, viewport.height, limits.renderDpi / POINTS_PER_INCH);
      if (size.width * size.height > limits.maxPagePixels) {
        const inches = (points: number) => (points / POINTS_PER_INCH).toFixed(1);
        throw new DocumentRejectedError(
          'too_many_pixels',
          `Page ${pageNumber} is ${inches(viewport.width)} × ${inches(viewport.height)} inches: at ${limits.renderDpi} dpi ` +
            `that is ${size.width} × ${size.height} pixels (${megapixels(size.width * size.height)} megapixels); ` +
            `the limit is ${megapixels(limits.maxPagePixels)} megapixels per page.`,
        );
      }
      page.cleanup();
    }
    return pages;
  } finally {
    await pdf.destroy();
  }
}

/**
 * Opens a PDF with pdf.js (through unpdf) in a configuration safe for untrusted files: no
 * `eval`, no XFA, warnings silenced, and images larger than `maxImageSize` pixels skipped
 * instead of decoded. pdf.js gets its own copy of the bytes.
 *
 * @param options.maxImageSize largest image pdf.js may decode, in pixels (width × height)
 * @param options.CanvasFactory the canvas factory used for rendering (from unpdf's
 *   `createIsomorphicCanvasFactory`); only needed to render pages
 * @returns the open document; the caller must `destroy()` it
 * @throws {DocumentRejectedError} `encrypted` when a password is needed, `corrupt` when pdf.js
 *   cannot parse the file
 */
export async function openPdf(
  bytes: Uint8Array,
  options: { maxImageSize: number; CanvasFactory?: object },
): Promise<PDFDocumentProxy> {
  try {
    // a fresh Uint8Array, not a Buffer view: pdf.js may take over (detach) the buffer it is given
    return await getDocumentProxy(new Uint8Array(bytes), {
      maxImageSize: options.maxImageSize,
      isEvalSupported: false,
      enableXfa: false,
      stopAtErrors: false,
      verbosity: 0, // errors only: pdf.js logs warnings about damaged files with console.log
      ...(options.CanvasFactory ? { CanvasFactory: options.CanvasFactory } : {}),
    });
  } catch (error) {
    if (error instanceof Error && error.name === 'PasswordException') {
      throw new DocumentRejectedError('encrypted', 'The PDF is protected by a password. Upload a copy without one.', {
        cause: error,
      });
    }
    throw new DocumentRejectedError('corrupt', 'The file is not a readable PDF.', { cause: error });
  }
}

/**
 * Runs one pdf.js call on an open document and turns its failure into a rejection: once the
 * file has opened, anything pdf.js cannot read is the file's fault.
 *
 * @throws {DocumentRejectedError} `corrupt` with `detail`, the original error as `cause`
 */
export async function readPdf<T>(call: () => Promise<T>, detail: string): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof DocumentRejectedError) throw error;
    throw new DocumentRejectedError('corrupt', detail, { cause: error });
  }
}

/**
 * The pixel size of a page rendered at `scale` device pixels per point, rounded down so that
 * width × height never exceeds what the scale promised; at least 1 × 1.
 *
 * @param widthPoints page width in points (1/72 inch), after /Rotate
 * @param heightPoints page height in points
 * @param scale device pixels per point (dpi / 72)
 */
export function renderedSize(widthPoints: number, heightPoints: number, scale: number): PixelSize {
  return {
    width: Math.max(1, Math.floor(widthPoints * scale)),
    height: Math.max(1, Math.floor(heightPoints * scale)),
  };
}

/**
 * Reads an image's pixel dimensions from its header, without decoding the image: PNG IHDR,
 * JPEG SOFn, WebP VP8/VP8L/VP8X, TIFF first IFD (ImageWidth, ImageLength).
 *
 * @returns width and height in pixels
 * @throws {DocumentRejectedError} `corrupt` when the header is truncated or malformed,
 *   `unsupported_type` for BigTIFF
 */
export function readImageSize(bytes: Uint8Array, kind: Exclude<DocumentKind, 'pdf'>): PixelSize {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let size: PixelSize | undefined;
  try {
    switch (kind) {
      case 'png':
        size = readPngSize(view);
        break;
      case 'jpeg':
        size = readJpegSize(view);
        break;
      case 'webp':
        size = readWebpSize(view);
        break;
      case 'tiff':
        size = readTiffSize(view);
        break;
    }
  } catch (error) {
    if (error instanceof DocumentRejectedError) throw error;
    // a RangeError from DataView: the header claims more bytes than the file has
    size = undefined;
  }
  if (!size || size.width <= 0 || size.height <= 0) {
    throw new DocumentRejectedError('corrupt', `The ${kind.toUpperCase()} image is damaged: its size cannot be read.`);
  }
  return size;
}

/**
 * Rejects an image larger than `maxPixels`.
 *
 * @param what the subject of the message, e.g. "The image"
 * @throws {DocumentRejectedError} `too_many_pixels`
 */
export function assertImageWithinLimit(size: PixelSize, maxPixels: number, what: string): void {
  const pixels = size.width * size.height;
  if (pixels > maxPixels) {
    throw new DocumentRejectedError(
      'too_many_pixels',
      `${what} is ${size.width} × ${size.height} pixels (${megapixels(pixels)} megapixels); ` +
        `the limit is ${megapixels(maxPixels)} megapixels.`,
    );
  }
}

/**
 * Rejects a PDF that embeds an image larger than `maxPixels` (see {@link findLargestPdfImage}).
 * pdf.js would skip such an image when rendering, silently leaving its page blank; saying so is
 * better than returning no text.
 *
 * @throws {DocumentRejectedError} `too_many_pixels`
 */
export function assertPdfImagesWithinLimit(bytes: Uint8Array, maxPixels: number): void {
  const largest = findLargestPdfImage(bytes);
  if (largest) assertImageWithinLimit(largest, maxPixels, 'An image in the PDF');
}

/**
 * Finds the largest image XObject in a PDF by reading the raw file: an image XObject is a
 * stream, and a stream's dictionary is never compressed (ISO 32000-1, 7.5.7: streams cannot live
 * in object streams), so `/Subtype /Image … /Width w /Height h` is plain text in the file.
 * Best effort: widths or heights given as indirect references, and inline images inside
 * compressed content streams, are not seen (pdf.js's `maxImageSize` still skips those).
 *
 * @returns the dimensions in pixels of the image with the most pixels, or undefined if none
 */
export function findLargestPdfImage(bytes: Uint8Array): PixelSize | undefined {
  const file = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // image dictionaries are a few hundred bytes; the caps keep a hostile file from making this slow
  const window = 2048;
  const maxDictionaries = 10_000;
  let largest: PixelSize | undefined;
  let seen = 0;
  for (let at = file.indexOf('/Image'); at !== -1 && seen < maxDictionaries; at = file.indexOf('/Image', at + 6)) {
    const next = file[at + 6];
    if (next !== undefined && !isPdfDelimiterOrSpace(next)) continue; // /ImageMask, /ImageB, …
    if (!precededBySubtype(file, at)) continue;
    seen++;
    const before = file.toString('latin1', Math.max(0, at - window), at);
    // the dictionary runs from this object's "obj" keyword to its "stream" keyword
    const after = file.toString('latin1', at, Math.min(file.length, at + window));
    const ends = [after.indexOf('stream'), after.indexOf('endobj')].filter((end) => end !== -1);
    const dictionary = before.slice(Math.max(0, before.lastIndexOf('obj'))) + after.slice(0, Math.min(after.length, ...ends));
    const width = directInteger(dictionary, 'Width');
    const height = directInteger(dictionary, 'Height');
    if (width !== undefined && height !== undefined && (!largest || width * height > largest.width * largest.height)) {
      largest = { width, height };
    }
  }
  return largest;
}

function precededBySubtype(file: Buffer, at: number): boolean {
  let end = at;
  while (end > 0 && isPdfWhiteSpace(file[end - 1]!)) end--;
  return end >= 8 && file.toString('latin1', end - 8, end) === '/Subtype';
}

function directInteger(dictionary: string, key: string): number | undefined {
  const match = new RegExp(`/${key}\\s+(\\d+)(\\s+\\d+\\s+R)?(?![\\w.])`).exec(dictionary);
  if (!match?.[1] || match[2]) return undefined; // absent, or an indirect reference "12 0 R"
  return Number(match[1]);
}

// ISO 32000-1, 7.2.2: white-space characters, and the delimiters ( ) < > [ ] { } / %
function isPdfWhiteSpace(byte: number): boolean {
  return byte === 0x00 || byte === 0x09 || byte === 0x0a || byte === 0x0c || byte === 0x0d || byte === 0x20;
}

function isPdfDelimiterOrSpace(byte: number): boolean {
  return isPdfWhiteSpace(byte) || [0x28, 0x29, 0x3c, 0x3e, 0x5b, 0x5d, 0x7b, 0x7d, 0x2f, 0x25].includes(byte);
}

function megapixels(pixels: number): string {
  return (pixels / 1_000_000).toLocaleString('en-US', { maximumFractionDigits: 1 });
}

// PNG: 8-byte signature, then the IHDR chunk (length, "IHDR", width, height) — PNG spec 11.2.2.
function readPngSize(view: DataView): PixelSize | undefined {
  if (view.getUint32(12) !== 0x49484452) return undefined; // "IHDR"
  return { width: view.getUint32(16), height: view.getUint32(20) };
}

// JPEG: walk the marker segments up to the first SOFn, which holds height then width (ITU T.81 B.2.2).
function readJpegSize(view: DataView): PixelSize | undefined {
  let offset = 2; // after SOI
  while (offset + 4 <= view.byteLength) {
    if (view.getUint8(offset) !== 0xff) {
      offset++; // stray bytes between segments: decoders skip them, so do we
      continue;
    }
    const marker = view.getUint8(offset + 1);
    offset += 2;
    if (marker === 0xff) {
      offset--; // fill byte: the next 0xFF starts the marker
      continue;
    }
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) continue; // TEM, RSTn, SOI: no length
    if (marker === 0xd9 || marker === 0xda) return undefined; // EOI or SOS before any frame header
    const length = view.getUint16(offset);
    if (length < 2) return undefined;
    const isFrameHeader = marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc;
    if (isFrameHeader) {
      // a height of 0 means "given later by a DNL marker": unknown until decoded, so refuse it
      return { height: view.getUint16(offset + 3), width: view.getUint16(offset + 5) };
    }
    offset += length;
  }
  return undefined;
}

// WebP: RIFF container, first chunk VP8 (lossy), VP8L (lossless) or VP8X (extended) — RFC 9649.
function readWebpSize(view: DataView): PixelSize | undefined {
  const chunk = String.fromCharCode(view.getUint8(12), view.getUint8(13), view.getUint8(14), view.getUint8(15));
  switch (chunk) {
    case 'VP8 ':
      if (view.getUint8(23) !== 0x9d || view.getUint8(24) !== 0x01 || view.getUint8(25) !== 0x2a) return undefined;
      return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
    case 'VP8L': {
      if (view.getUint8(20) !== 0x2f) return undefined;
      const bits = view.getUint32(21, true);
      return { width: (bits & 0x3fff) + 1, height: ((bits >>> 14) & 0x3fff) + 1 };
    }
    case 'VP8X': {
      const uint24 = (at: number) => view.getUint8(at) | (view.getUint8(at + 1) << 8) | (view.getUint8(at + 2) << 16);
      return { width: uint24(24) + 1, height: uint24(27) + 1 };
    }
    default:
      return undefined;
  }
}

// TIFF: byte order, 42, offset of the first IFD; tags 256 ImageWidth and 257 ImageLength (TIFF 6.0, section 2).
function readTiffSize(view: DataView): PixelSize | undefined {
  const littleEndian = view.getUint16(0) === 0x4949; // "II"
  const version = view.getUint16(2, littleEndian);
  if (version === 43) {
    throw new DocumentRejectedError('unsupported_type', 'BigTIFF images are not supported. Save the image as a regular TIFF or PNG.');
  }
  if (version !== 42) return undefined;
  const ifd = view.getUint32(4, littleEndian);
  const entries = view.getUint16(ifd, littleEndian);
  let width: number | undefined;
  let height: number | undefined;
  for (let index = 0; index < entries; index++) {
    const entry = ifd + 2 + index * 12;
    const tag = view.getUint16(entry, littleEndian);
    if (tag !== 256 && tag !== 257) continue;
    const type = view.getUint16(entry + 2, littleEndian);
    // SHORT (3) or LONG (4), stored left-justified in the 4-byte value field
    const value = type === 3 ? view.getUint16(entry + 8, littleEndian) : type === 4 ? view.getUint32(entry + 8, littleEndian) : undefined;
    if (tag === 256) width = value;
    else height = value;
  }
  return width !== undefined && height !== undefined ? { width, height } : undefined;
}
