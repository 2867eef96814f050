import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { PDFDocument, StandardFonts, rgb } from 'pdf-lib';
import { extractText } from 'unpdf';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspectDocument } from '../../src/tasks/document-inspector.ts';
import { createOcrProcessor, type OcrProcessor, type OcrResult } from '../../src/tasks/ocr-processor.ts';
import { createOcrWorkerPool, type OcrWorkerPool } from '../../src/tasks/ocr-worker-pool.ts';
import { characterErrorRate, wordRecall } from '../helpers/text-overlap.ts';

// The OCR job against the Tesseract command line, on real scans with ground truth (issue 12).
// One warm pool of two workers (this machine's cores) for the whole file; each document is read
// once and its result checked several ways.
const SHARED = path.resolve(process.cwd(), '../shared/fixtures/documents');
const shared = (name: string) => readFile(path.join(SHARED, name));
const truth = async (name: string) => (await shared(name)).toString('utf8');

/**
 * The Tesseract command line's word recall (see `wordRecall`) on the same pages, measured once
 * on this machine with Debian bookworm's tesseract 5.3.0 (leptonica 1.82.0, tesseract-ocr-eng
 * 1:4.1.0-2) by
 *
 *     tesseract ../shared/fixtures/documents/<page>.png <page> -l eng
 *
 * and scored against the page's .txt with test/helpers/text-overlap.ts. Its character error rate
 * on linn.png was 0.0103.
 */
const CLI_WORD_RECALL: Record<string, number> = {
  'linn.png': 0.9576,
  'books/a006.png': 0.9561,
  'books/d027.png': 0.9809,
  'books/g025.png': 0.9481,
  'books/i030.png': 0.9944,
};
const HALF_A_POINT = 0.005;

let pool: OcrWorkerPool;
let processor: OcrProcessor;
const results = new Map<string, Promise<OcrResult>>();

/** Reads a fixture once (the first test to ask starts it), with the searchable PDF. */
function read(name: string, kind: 'png' | 'pdf'): Promise<OcrResult> {
  let result = results.get(name);
  if (!result) {
    result = shared(name).then((bytes) => processor.process(bytes, kind, undefined, { searchablePdf: true }));
    results.set(name, result);
  }
  return result;
}

beforeAll(() => {
  pool = createOcrWorkerPool({ size: 2 });
  processor = createOcrProcessor({ renderDpi: 300, maxPagePixels: 100_000_000, pool });
});

afterAll(async () => {
  await processor.close();
  await pool.close();
});

describe('word recall against ground truth, at least the command line’s minus half a point', () => {
  it.each(Object.keys(CLI_WORD_RECALL))('%s', async (page) => {
    const result = await read(page, 'png');
    const recall = wordRecall(await truth(page.replace(/\.png$/, '.txt')), result.text);
    expect(recall).toBeGreaterThanOrEqual(CLI_WORD_RECALL[page]! - HALF_A_POINT);
    // English pages stay English: the language check does not re-read them
    expect(result.pages[0]).toMatchObject({ source: 'ocr', language: 'eng', rotation: 0, lowConfidence: false });
  });
});

describe('layout, orientation and language', () => {
  it('reads linn.png’s two columns in order: character error rate under 0.05', async () => {
    const result = await read('linn.png', 'png');
    expect(characterErrorRate(await truth('linn.txt'), result.text)).toBeLessThan(0.05);
  });

  it('reads all four pages of cardinal.pdf (linn.png turned four ways) like the upright one', async () => {
    const result = await read('cardinal.pdf', 'pdf');
    const expected = await truth('linn.txt');
    expect(result.pages.map((page) => page.source)).toEqual(['ocr', 'ocr', 'ocr', 'ocr']);
    expect(new Set(result.pages.map((page) => page.rotation)).size).toBe(4); // one page each way
    for (const page of result.pages) {
      expect(wordRecall(expected, page.text), `page ${page.page}`).toBeGreaterThanOrEqual(0.95);
      expect(page.width * page.height).toBe(2550 * 3300); // rendered at the scan's 300 dpi
    }
  });

  it('keeps the accents of francais.pdf: the English first pass is read again in French', async () => {
    const result = await read('francais.pdf', 'pdf');
    expect(result.pages[0]).toMatchObject({ source: 'ocr', language: 'fra' });
    for (const word of ['Île', 'intérieure', 'côté', 'alcôve']) expect(result.text).toContain(word);
  });

  it('reads in the language asked for, without a second pass', async () => {
    const result = await processor.process(await shared('francais.pdf'), 'pdf', undefined, { language: 'eng' });
    expect(result.pages[0]!.language).toBe('eng');
    // the English model drops what it does not know: the accents the French pass keeps
    expect(result.text).not.toContain('Île');
    expect(result.text).not.toContain('alcôve');
  });

  it('gives words with boxes in pixels of the page as processed, and flags pages under the confidence threshold', async () => {
    const result = await read('linn.png', 'png');
    const page = result.pages[0]!;
    const words = page.lines.flatMap((line) => line.words);
    expect(words.length).toBeGreaterThan(600);
    for (const word of words) {
      expect(word.bbox.x0).toBeGreaterThanOrEqual(0);
      expect(word.bbox.x1).toBeLessThanOrEqual(page.width);
      expect(word.bbox.y1).toBeLessThanOrEqual(page.height);
      expect(word.confidence).toBeGreaterThanOrEqual(0);
    }
    const title = words.find((word) => word.text === 'LinnSequencer')!;
    expect(title.bbox.y0).toBeLessThan(400); // the title is at the top of the page

    const strict = createOcrProcessor({ renderDpi: 300, maxPagePixels: 100_000_000, pool, lowConfidence: 99 });
    const flagged = await strict.process(await linnTitleBand(), 'png');
    expect(flagged.pages[0]).toMatchObject({ source: 'ocr', lowConfidence: true });
  });
});

describe('what is read and what is not', () => {
  it('OCRs a scan whose text layer is only a stamp, instead of taking the stamp as the page’s text', async () => {
    const document = await PDFDocument.create();
    const scan = await document.embedPng(await shared('books/g025.png'));
    const page = document.addPage([(scan.width * 72) / 300, (scan.height * 72) / 300]);
    page.drawImage(scan, { x: 0, y: 0, width: page.getWidth(), height: page.getHeight() });
    const font = await document.embedFont(StandardFonts.HelveticaBold);
    page.drawText('RECEIVED 30 NOV 2026 - FILED', { x: 40, y: page.getHeight() - 30, size: 14, font, color: rgb(0.8, 0, 0) });

    const result = await processor.process(await document.save(), 'pdf');
    expect(result.pages[0]!.source).toBe('ocr');
    expect(wordRecall(await truth('books/g025.txt'), result.text)).toBeGreaterThanOrEqual(CLI_WORD_RECALL['books/g025.png']! - HALF_A_POINT);
  });

  it('counts and reads every page of a multi-page TIFF', async () => {
    const tiff = multiPageGrayTiff([await linnTitleBandPixels(), await bookBandPixels()]);
    expect((await inspectDocument(tiff, { maxPagePixels: 100_000_000, renderDpi: 300 })).pages).toBe(2);
    const result = await processor.process(tiff, 'tiff');
    expect(result.pageCount).toBe(2);
    expect(result.pages[0]!.text).toMatch(/LinnSequencer/);
    expect(result.pages[1]!.text).toMatch(/COLONIAL FLORIDA/);
  });
});

describe('the searchable PDF', () => {
  it('keeps cardinal.pdf’s pages and lays the recognized words under them, on every page however it was turned', async () => {
    const result = await read('cardinal.pdf', 'pdf');
    const pdf = result.searchablePdf!;
    expect(pdf).toBeInstanceOf(Uint8Array);
    const opened = await PDFDocument.load(pdf);
    expect(opened.getPageCount()).toBe(4);
    expect(opened.getPage(1).getSize()).toEqual({ width: 792, height: 612 }); // the original page, landscape
    const { text } = await extractText(new Uint8Array(pdf), { mergePages: false });
    expect(text).toHaveLength(4);
    text.forEach((layer, index) => {
      expect(wordRecall(result.pages[index]!.text, layer), `page ${index + 1}`).toBeGreaterThanOrEqual(0.95);
    });
  });

  it('makes an image into a one-page PDF of the image with its text', async () => {
    const result = await read('linn.png', 'png');
    const { text } = await extractText(new Uint8Array(result.searchablePdf!), { mergePages: true });
    expect(wordRecall(result.text, text)).toBeGreaterThanOrEqual(0.95);
  });
});

// --- inputs built by the test -------------------------------------------------------------------

interface Gray {
  width: number;
  height: number;
  data: Uint8Array;
}

async function band(name: string, top: number, height: number): Promise<{ png: Buffer; gray: Gray }> {
  const scan = await loadImage(await shared(name));
  const canvas = createCanvas(scan.width, height);
  const context = canvas.getContext('2d');
  context.drawImage(scan, 0, -top);
  const rgba = context.getImageData(0, 0, scan.width, height).data;
  const data = new Uint8Array(scan.width * height);
  for (let i = 0; i < data.length; i++) data[i] = rgba[i * 4]!;
  return { png: await canvas.encode('png'), gray: { width: scan.width, height, data } };
}

/** The title band of linn.png ("The LinnSequencer …"), quick to read. */
async function linnTitleBand(): Promise<Buffer> {
  return (await band('linn.png', 0, 420)).png;
}

async function linnTitleBandPixels(): Promise<Gray> {
  return (await band('linn.png', 0, 420)).gray;
}

/** The top of books/g025.png: its running head, "COLONIAL FLORIDA." */
async function bookBandPixels(): Promise<Gray> {
  return (await band('books/g025.png', 0, 700)).gray;
}

/** An uncompressed 8-bit grayscale TIFF with one image file directory per page (TIFF 6.0, section 2). */
function multiPageGrayTiff(pages: Gray[]): Buffer {
  const ENTRIES = 9;
  const ifdSize = 2 + ENTRIES * 12 + 4;
  let offset = 8;
  const layout = pages.map((page) => {
    const ifd = offset;
    const data = ifd + ifdSize;
    offset = data + page.data.length + (page.data.length % 2); // IFDs start on a word boundary
    return { ifd, data };
  });
  const file = Buffer.alloc(offset);
  file.write('II', 0, 'latin1');
  file.writeUInt16LE(42, 2);
  file.writeUInt32LE(layout[0]!.ifd, 4);
  pages.forEach((page, index) => {
    const { ifd, data } = layout[index]!;
    const entries: Array<[tag: number, type: number, value: number]> = [
      [256, 4, page.width],
      [257, 4, page.height],
      [258, 3, 8],
      [259, 3, 1],
      [262, 3, 1],
      [273, 4, data],
      [277, 3, 1],
      [278, 4, page.height],
      [279, 4, page.data.length],
    ];
    file.writeUInt16LE(ENTRIES, ifd);
    entries.forEach(([tag, type, value], entry) => {
      const at = ifd + 2 + entry * 12;
      file.writeUInt16LE(tag, at);
      file.writeUInt16LE(type, at + 2);
      file.writeUInt32LE(1, at + 4);
      if (type === 3) file.writeUInt16LE(value, at + 8);
      else file.writeUInt32LE(value, at + 8);
    });
    file.writeUInt32LE(layout[index + 1]?.ifd ?? 0, ifd + 2 + ENTRIES * 12);
    file.set(page.data, data);
  });
  return file;
}
