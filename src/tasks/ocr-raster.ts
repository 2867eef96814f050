import { createCanvas, loadImage } from '@napi-rs/canvas';
import UTIF from 'utif2';
import { DocumentRejectedError } from './tasks-errors.ts';

/** An 8-bit grayscale image, one byte per pixel, rows top to bottom. */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A quarter turn the OCR applies to a page, in degrees clockwise. */
export type QuarterTurn = 0 | 90 | 180 | 270;

// A pixel counts as ink below this luma (0 black – 255 white): Otsu's threshold on a clean scan
// lands near the middle, and paper tint or JPEG noise stays well above it.
const INK_LUMA = 128;

/**
 * Converts RGBA pixels to 8-bit luma (ITU-R BT.601 weights in 8-bit fixed point,
 * 77 + 150 + 29 = 256), compositing transparency over white as a viewer would show it.
 */
export function rgbaToGray(rgba: Uint8Array | Uint8ClampedArray, width: number, height: number): GrayImage {
  const data = new Uint8Array(width * height);
  for (let pixel = 0, inp = 0; pixel < data.length; pixel++, inp += 4) {
    const luma = (rgba[inp]! * 77 + rgba[inp + 1]! * 150 + rgba[inp + 2]! * 29 + 128) >> 8;
    const alpha = rgba[inp + 3]!;
    data[pixel] = alpha === 255 ? luma : (luma * alpha + 255 * (255 - alpha) + 127) / 255;
  }
  return { width, height, data };
}

/**
 * Encodes a gray image as binary PGM (Netpbm P5): Leptonica, inside Tesseract, reads it without
 * any decoding work, and it carries no resolution (the caller passes the dpi to Tesseract).
 */
export function toPgm(image: GrayImage): Buffer {
  const header = Buffer.from(`P5\n${image.width} ${image.height}\n255\n`, 'latin1');
  const file = Buffer.allocUnsafe(header.length + image.data.length);
  header.copy(file);
  file.set(image.data, header.length);
  return file;
}

/** Turns `image` clockwise by `turn` degrees (a new image; 0 returns the same one). */
export function rotateGray(image: GrayImage, turn: QuarterTurn): GrayImage {
  if (turn === 0) return image;
  const { width: w, height: h, data } = image;
  const out = new Uint8Array(data.length);
  if (turn === 180) {
    for (let i = 0, j = data.length - 1; i < data.length; i++, j--) out[j] = data[i]!;
    return { width: w, height: h, data: out };
  }
  // a quarter turn swaps the sides: the new image is h wide and w high
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      // clockwise: (x, y) → (h-1-y, x); counter-clockwise (270): (x, y) → (y, w-1-x)
      const target = turn === 90 ? x * h + (h - 1 - y) : (w - 1 - x) * h + y;
      out[target] = data[row + x]!;
    }
  }
  return { width: h, height: w, data: out };
}

/**
 * Maps a point of the image after a clockwise `turn` back to the image before it (continuous
 * pixel coordinates, origin top-left). `width` and `height` are those of the image before.
 */
export function unrotatePoint(x: number, y: number, turn: QuarterTurn, width: number, height: number): [number, number] {
  switch (turn) {
    case 0:
      return [x, y];
    case 90:
      return [y, height - x];
    case 180:
      return [width - x, height - y];
    case 270:
      return [width - y, x];
  }
}

/**
 * Shrinks `image` by the smallest whole factor that brings it to at most `maxPixels`, each new
 * pixel the mean of the block it replaces (area averaging, no aliasing).
 *
 * @returns the image and the factor (1: unchanged)
 */
export function shrinkGray(image: GrayImage, maxPixels: number): { image: GrayImage; factor: number } {
  const factor = Math.ceil(Math.sqrt((image.width * image.height) / maxPixels));
  if (factor <= 1) return { image, factor: 1 };
  const width = Math.floor(image.width / factor);
  const height = Math.floor(image.height / factor);
  const data = new Uint8Array(width * height);
  const area = factor * factor;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      let sum = 0;
      for (let dy = 0; dy < factor; dy++) {
        const row = (y * factor + dy) * image.width + x * factor;
        for (let dx = 0; dx < factor; dx++) sum += image.data[row + dx]!;
      }
      data[y * width + x] = Math.round(sum / area);
    }
  }
  return { image: { width, height, data }, factor };
}

/** The share of a page's pixels that are ink (darker than mid-gray), 0–1. */
export function inkShare(image: GrayImage): number {
  let dark = 0;
  const { data } = image;
  for (let i = 0; i < data.length; i++) if (data[i]! < INK_LUMA) dark++;
  return data.length === 0 ? 0 : dark / data.length;
}

/**
 * How many pages (images) a TIFF file holds: the length of its chain of image file directories
 * (TIFF 6.0, section 2), read with UTIF without decoding any pixels.
 *
 * @throws {DocumentRejectedError} `corrupt` when the directories cannot be read
 */
export function countTiffPages(bytes: Uint8Array): number {
  return readTiffDirectories(bytes).length;
}

function readTiffDirectories(bytes: Uint8Array): UTIF.IFD[] {
  let ifds: UTIF.IFD[];
  try {
    ifds = UTIF.decode(toArrayBuffer(bytes));
  } catch (error) {
    throw new DocumentRejectedError('corrupt', 'The TIFF image is damaged: its pages cannot be read.', { cause: error });
  }
  // UTIF also lists EXIF and thumbnail sub-directories' parents only: keep those with pixels
  const pages = ifds.filter((ifd) => typeof ifd['t256'] !== 'undefined' && typeof ifd['t257'] !== 'undefined');
  if (pages.length === 0) throw new DocumentRejectedError('corrupt', 'The TIFF image has no readable page.');
  return pages;
}

/** The pixel size of every page of a TIFF, from its directories (no pixel decoded). */
export function tiffPageSizes(bytes: Uint8Array): Array<{ width: number; height: number }> {
  return readTiffDirectories(bytes).map((ifd) => ({ width: firstNumber(ifd['t256']), height: firstNumber(ifd['t257']) }));
}

/**
 * Decodes page `index` (0-based) of a TIFF to gray with UTIF (all TIFF compressions a scanner
 * writes: none, CCITT G3/G4, LZW, PackBits, Deflate, JPEG).
 *
 * @throws {DocumentRejectedError} `corrupt` when the page cannot be decoded
 */
export function decodeTiffPage(bytes: Uint8Array, index: number): GrayImage {
  const buffer = toArrayBuffer(bytes);
  const ifd = readTiffDirectories(bytes)[index];
  if (!ifd) throw new DocumentRejectedError('corrupt', `The TIFF image has no page ${index + 1}.`);
  try {
    UTIF.decodeImage(buffer, ifd);
    const rgba = UTIF.toRGBA8(ifd);
    if (rgba.length < ifd.width * ifd.height * 4) throw new Error('short pixel data');
    return rgbaToGray(rgba, ifd.width, ifd.height);
  } catch (error) {
    throw new DocumentRejectedError('corrupt', `Page ${index + 1} of the TIFF image could not be decoded.`, { cause: error });
  }
}

/**
 * Decodes a PNG, JPEG or WebP image to gray with Skia (@napi-rs/canvas).
 *
 * @throws {DocumentRejectedError} `corrupt` when the image cannot be decoded
 */
export async function decodeImage(bytes: Uint8Array): Promise<GrayImage> {
  let image: Awaited<ReturnType<typeof loadImage>>;
  try {
    image = await loadImage(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (error) {
    throw new DocumentRejectedError('corrupt', 'The image could not be decoded.', { cause: error });
  }
  const canvas = createCanvas(image.width, image.height);
  const context = canvas.getContext('2d');
  context.fillStyle = '#fff';
  context.fillRect(0, 0, image.width, image.height);
  context.drawImage(image, 0, 0);
  const gray = rgbaToGray(context.getImageData(0, 0, image.width, image.height).data, image.width, image.height);
  canvas.width = 0;
  canvas.height = 0;
  return gray;
}

function firstNumber(tag: unknown): number {
  const value = Array.isArray(tag) ? tag[0] : tag;
  return typeof value === 'number' ? value : 0;
}

function toArrayBuffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
}
