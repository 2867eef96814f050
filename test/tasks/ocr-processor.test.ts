import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOcrProcessor, type OcrLogger, type OcrProcessor, type OcrProgress } from '../../src/tasks/ocr-processor.ts';
import { createOcrWorkerPool, type OcrWorkerPool } from '../../src/tasks/ocr-worker-pool.ts';
import { DocumentRejectedError } from '../../src/tasks/tasks-errors.ts';
import { wordOverlap } from '../helpers/text-overlap.ts';

const FIXTURES = path.resolve(process.cwd(), 'test/fixtures/documents');
const fixture = (name: string) => readFile(path.join(FIXTURES, name));
const MEGABYTE = 1024 * 1024;

/** Records what the processor logs. */
function recordingLogger(): OcrLogger & { lines: Array<{ level: string; message: string; details: object }> } {
  const lines: Array<{ level: string; message: string; details: object }> = [];
  const record = (level: string) => (details: object, message: string) => void lines.push({ level, message, details });
  return { lines, info: record('info'), warn: record('warn'), error: record('error') };
}

async function rejection(promise: Promise<unknown>): Promise<DocumentRejectedError> {
  const error = await promise.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(DocumentRejectedError);
  return error as DocumentRejectedError;
}

// One pool of two Tesseract workers, as the job worker has on this 2-core machine, and one
// processor at the app's defaults (src/config.ts) on it, shared by the tests.
const logger = recordingLogger();
let pool: OcrWorkerPool;
let processor: OcrProcessor;

beforeAll(() => {
  pool = createOcrWorkerPool({ size: 2, logger });
  processor = createOcrProcessor({ renderDpi: 300, maxPagePixels: 40_000_000, pool, logger });
});

afterAll(async () => {
  await processor.close();
  await pool.close();
});

describe('OCR of images', () => {
  it("reads linn.png: the text shares at least 90% of linn.txt's distinct words", async () => {
    const progress: OcrProgress[] = [];
    const result = await processor.process(await fixture('linn.png'), 'png', (step) => void progress.push(step));

    const truth = await readFile(path.join(FIXTURES, 'linn.txt'), 'utf8');
    expect(wordOverlap(truth, result.text)).toBeGreaterThanOrEqual(0.9);
    expect(result.pageCount).toBe(1);
    expect(result.pages[0]).toMatchObject({ page: 1, source: 'ocr' });
    expect(result.pages[0]!.confidence).toBeGreaterThan(80);
    expect(result.words).toBeGreaterThan(600);
    expect(result.meanConfidence).toBe(result.pages[0]!.confidence);
    expect(progress).toEqual([{ page: 1, pages: 1 }]);
  });

  it('reads TIFF, WebP and JPEG images as they are', async () => {
    const title = await linnTitle();
    const files = {
      tiff: grayTiff(title),
      webp: await title.canvas.encode('webp', 90),
      jpeg: await title.canvas.encode('jpeg', 90),
    };
    for (const [kind, bytes] of Object.entries(files)) {
      const result = await processor.process(bytes, kind as 'tiff' | 'webp' | 'jpeg');
      expect(result.text, kind).toMatch(/LinnSequencer/);
    }
  });

  it("rejects an image whose data is damaged as 'corrupt', and keeps working afterwards", async () => {
    const png = await fixture('linn.png');
    const error = await rejection(processor.process(png.subarray(0, 5_000), 'png'));
    expect(error.code).toBe('corrupt');

    const title = await linnTitle();
    const result = await processor.process(await title.canvas.encode('png'), 'png');
    expect(result.text).toMatch(/LinnSequencer/);
  });

  it("rejects an image over maxPagePixels from its header as 'too_many_pixels'", async () => {
    const header = Buffer.alloc(33);
    Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex').copy(header);
    header.writeUInt32BE(50_000, 16);
    header.writeUInt32BE(50_000, 20);
    expect((await rejection(processor.process(header, 'png'))).code).toBe('too_many_pixels');
  });
});

describe('OCR of PDFs', () => {
  it('gives trivial.pdf one blank page: no text and no ink', async () => {
    const result = await processor.process(await fixture('trivial.pdf'), 'pdf');
    expect(result).toMatchObject({ text: '', pageCount: 1, words: 0, meanConfidence: null });
    expect(result.pages).toEqual([
      {
        page: 1,
        text: '',
        words: 0,
        confidence: null,
        lowConfidence: false,
        source: 'blank',
        language: 'eng',
        rotation: 0,
        width: 1250, // trivial.pdf's 3-inch page at 300 dpi
        height: 1250,
        lines: [],
        durationMs: expect.any(Number),
      },
    ]);
  });

  it('uses a page’s text layer where it has one and OCRs the other pages, reporting each page', async () => {
    const pdf = twoPagePdf();
    const progress: OcrProgress[] = [];
    const result = await processor.process(pdf, 'pdf', async (step) => {
      progress.push(step);
    });

    expect(progress).toEqual([
      { page: 1, pages: 2 },
      { page: 2, pages: 2 },
    ]);
    expect(result.pages.map((page) => page.source)).toEqual(['text-layer', 'ocr']);
    expect(result.pages[0]).toMatchObject({ text: 'The quick brown fox jumps over the lazy dog.', words: 9, confidence: null });
    // the text layer's words with boxes in pixels of the page at 300 dpi (2550 × 3300): "The" is
    // set at x = 72 pt (300 px), on a baseline 92 pt from the top (383 px), 14 pt high (58 px)
    const layerWords = result.pages[0]!.lines.flatMap((line) => line.words);
    expect(layerWords.map((word) => word.text)).toEqual(['The', 'quick', 'brown', 'fox', 'jumps', 'over', 'the', 'lazy', 'dog.']);
    expect(result.pages[0]).toMatchObject({ width: 2550, height: 3300 });
    const the = layerWords[0]!;
    expect(the.bbox.x0).toBeGreaterThanOrEqual(298);
    expect(the.bbox.x0).toBeLessThanOrEqual(302);
    expect(the.bbox.y0).toBeGreaterThan(383 - 70);
    expect(the.bbox.y0).toBeLessThan(383 - 40);
    expect(the.bbox.y1).toBeGreaterThan(383);
    expect(the.confidence).toBeNull();
    expect(layerWords[1]!.bbox.x0).toBeGreaterThan(the.bbox.x1 - 5);
    expect(result.pages[1]!.text).toBe('HELLO');
    expect(result.text).toBe('The quick brown fox jumps over the lazy dog.\n\nHELLO');
    expect(result.words).toBe(10);
    expect(result.meanConfidence).toBe(result.pages[1]!.confidence);
  });

  it('stops at the page whose progress callback throws, and passes the error on', async () => {
    const calls: number[] = [];
    const cancelled = new Error('job cancelled');
    const outcome = processor.process(twoPagePdf(), 'pdf', (step) => {
      calls.push(step.page);
      throw cancelled;
    });
    await expect(outcome).rejects.toBe(cancelled);
    expect(calls).toEqual([1]);
  });

  it("rejects invalid.pdf as 'corrupt'", async () => {
    expect((await rejection(processor.process(await fixture('invalid.pdf'), 'pdf'))).code).toBe('corrupt');
  });

  it('renders a page too large for renderDpi at a lower resolution, within maxPagePixels', async () => {
    const small = recordingLogger();
    const capped = createOcrProcessor({ renderDpi: 200, maxPagePixels: 4_000_000, pool, logger: small });
    try {
      const rssBefore = process.memoryUsage().rss;
      // a 100 × 100 inch page: 400 megapixels at 200 dpi, rendered at 20 dpi (2000 × 2000) instead
      const result = await capped.process(posterPdf(), 'pdf');
      expect(result.text).toBe('HELLO');
      expect(small.lines).toContainEqual({
        level: 'warn',
        message: 'page rendered below renderDpi to stay within maxPagePixels',
        details: { page: 1, renderDpi: 200, dpi: 20, maxPagePixels: 4_000_000 },
      });
      expect(process.memoryUsage().rss - rssBefore).toBeLessThan(300 * MEGABYTE);
    } finally {
      await capped.close();
    }
  });

  it('refuses hugemono.pdf and enormous.pdf without decoding their images', async () => {
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    const huge = await rejection(processor.process(await fixture('hugemono.pdf'), 'pdf'));
    expect(huge.code).toBe('too_many_pixels');
    expect(huge.detail).toContain('35000 × 35000');
    const enormous = await rejection(processor.process(await fixture('enormous.pdf'), 'pdf'));
    expect(enormous.code).toBe('too_many_pixels');
    expect(enormous.detail).toContain('9000 × 9000');
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * MEGABYTE);
  });
});

describe('the Tesseract worker pool', () => {
  it('starts its workers once, when it is made, and reuses them for every document', () => {
    expect(logger.lines.filter((line) => line.message === 'tesseract worker started')).toHaveLength(2);
  });

  it('reads the bundled English model without writing a cache into the working directory', () => {
    expect(existsSync(path.join(process.cwd(), 'eng.traineddata'))).toBe(false);
  });

  it('refuses work once closed', async () => {
    const closing = createOcrProcessor({ renderDpi: 200, maxPagePixels: 40_000_000, pool });
    await closing.close();
    await expect(closing.process(await fixture('trivial.pdf'), 'pdf')).rejects.toThrow('The OCR processor is closed.');
  });
});

// --- inputs built by the test -------------------------------------------------------------------

/** The title band of linn.png ("The LinnSequencer …"), small enough to OCR in well under a second. */
async function linnTitle() {
  const scan = await loadImage(await fixture('linn.png'));
  const canvas = createCanvas(scan.width, 420);
  const context = canvas.getContext('2d');
  context.drawImage(scan, 0, 0);
  return { canvas, width: scan.width, height: 420, rgba: context.getImageData(0, 0, scan.width, 420).data };
}

/** An uncompressed 8-bit grayscale baseline TIFF (TIFF 6.0, section 4) of an RGBA image. */
function grayTiff(image: { width: number; height: number; rgba: Uint8ClampedArray }): Buffer {
  const entries: Array<[tag: number, type: number, value: number]> = [
    [256, 4, image.width], // ImageWidth
    [257, 4, image.height], // ImageLength
    [258, 3, 8], // BitsPerSample
    [259, 3, 1], // Compression: none
    [262, 3, 1], // PhotometricInterpretation: black is zero
    [273, 4, 0], // StripOffsets, set below
    [277, 3, 1], // SamplesPerPixel
    [278, 4, image.height], // RowsPerStrip
    [279, 4, image.width * image.height], // StripByteCounts
  ];
  const dataOffset = 8 + 2 + entries.length * 12 + 4;
  const file = Buffer.alloc(dataOffset + image.width * image.height);
  file.write('II', 0, 'latin1');
  file.writeUInt16LE(42, 2);
  file.writeUInt32LE(8, 4);
  file.writeUInt16LE(entries.length, 8);
  entries.forEach(([tag, type, value], index) => {
    const entry = 10 + index * 12;
    file.writeUInt16LE(tag, entry);
    file.writeUInt16LE(type, entry + 2);
    file.writeUInt32LE(1, entry + 4);
    const stored = tag === 273 ? dataOffset : value;
    if (type === 3) file.writeUInt16LE(stored, entry + 8);
    else file.writeUInt32LE(stored, entry + 8);
  });
  for (let pixel = 0; pixel < image.width * image.height; pixel++) file[dataOffset + pixel] = image.rgba[pixel * 4]!;
  return file;
}

/** A PDF from its objects (numbered from 1, object 1 the catalog), with a correct xref table. */
function pdfFile(objects: string[]): Buffer {
  let body = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((object, index) => {
    offsets.push(Buffer.byteLength(body, 'latin1'));
    body += `${index + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = Buffer.byteLength(body, 'latin1');
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  body += offsets.map((offset) => `${String(offset).padStart(10, '0')} 00000 n \n`).join('');
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

const stream = (content: string) => `<< /Length ${content.length} >>\nstream\n${content}\nendstream`;
const helvetica = '<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>';

/**
 * Page 1 carries a sentence as real text (a text layer); page 2 shows only the word HELLO in
 * 96-point type, too little to count as a text layer, so it is rendered and OCRed.
 */
function twoPagePdf(): Buffer {
  const page = (contents: number) =>
    `<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents ${contents} 0 R /Resources << /Font << /F1 5 0 R >> >> >>`;
  return pdfFile([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R 4 0 R] /Count 2 >>',
    page(6),
    page(7),
    helvetica,
    stream('BT /F1 14 Tf 72 700 Td (The quick brown fox jumps over the lazy dog.) Tj ET'),
    stream('BT /F1 96 Tf 72 500 Td (HELLO) Tj ET'),
  ]);
}

/** One 100 × 100 inch page with HELLO in 1200-point type. */
function posterPdf(): Buffer {
  return pdfFile([
    '<< /Type /Catalog /Pages 2 0 R >>',
    '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
    '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 7200 7200] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>',
    stream('BT /F1 1200 Tf 400 3000 Td (HELLO) Tj ET'),
    helvetica,
  ]);
}
