import { createHash } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createCanvas } from '@napi-rs/canvas';
import { getDocumentProxy } from 'unpdf';
import { describe, expect, it } from 'vitest';
import { inspectDocument, readImageSize, type DocumentLimits } from '../../src/tasks/document-inspector.ts';
import { DocumentRejectedError } from '../../src/tasks/tasks-errors.ts';

const FIXTURES = path.resolve(process.cwd(), 'test/fixtures/documents');
const fixture = (name: string) => readFile(path.join(FIXTURES, name));

/** The app's defaults (src/config.ts: OCR_RENDER_DPI 200, MAX_PAGE_PIXELS 40 000 000). */
const DEFAULT_LIMITS: DocumentLimits = { renderDpi: 200, maxPagePixels: 40_000_000 };
/** Room for multipage.pdf, whose page 2 embeds a 9000 × 9000 (81 megapixel) scan. */
const ROOMY_LIMITS: DocumentLimits = { renderDpi: 200, maxPagePixels: 100_000_000 };

async function rejection(promise: Promise<unknown>): Promise<DocumentRejectedError> {
  const error = await promise.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error).toBeInstanceOf(DocumentRejectedError);
  return error as DocumentRejectedError;
}

describe('inspectDocument: the type comes from the content', () => {
  it('reads a PNG scan as one PNG page', async () => {
    expect(await inspectDocument(await fixture('linn.png'), DEFAULT_LIMITS)).toEqual({
      kind: 'png',
      mimeType: 'image/png',
      pages: 1,
    });
  });

  it('still detects a PNG renamed to .pdf as a PNG', async () => {
    const folder = await mkdtemp(path.join(tmpdir(), 'tally-inspector-'));
    try {
      const renamed = path.join(folder, 'scan.pdf');
      await copyFile(path.join(FIXTURES, 'linn.png'), renamed);
      expect(await inspectDocument(await readFile(renamed), DEFAULT_LIMITS)).toMatchObject({ kind: 'png', pages: 1 });
    } finally {
      await rm(folder, { recursive: true, force: true });
    }
  });

  it('recognises JPEG, WebP and TIFF images', async () => {
    const canvas = createCanvas(320, 200);
    const context = canvas.getContext('2d');
    context.fillStyle = 'white';
    context.fillRect(0, 0, 320, 200);
    const jpeg = await canvas.encode('jpeg', 90);
    const webp = await canvas.encode('webp', 90);
    expect(await inspectDocument(jpeg, DEFAULT_LIMITS)).toEqual({ kind: 'jpeg', mimeType: 'image/jpeg', pages: 1 });
    expect(await inspectDocument(webp, DEFAULT_LIMITS)).toEqual({ kind: 'webp', mimeType: 'image/webp', pages: 1 });
    expect(await inspectDocument(tiffHeader(320, 200, 'II'), DEFAULT_LIMITS)).toEqual({
      kind: 'tiff',
      mimeType: 'image/tiff',
      pages: 1,
    });
  });

  it("refuses a text file as 'unsupported_type', even linn.txt, the OCR ground truth", async () => {
    const error = await rejection(inspectDocument(await fixture('linn.txt'), DEFAULT_LIMITS));
    expect(error.code).toBe('unsupported_type');
    expect(error.detail).toMatch(/PDF/);
  });

  it("refuses a GIF as 'unsupported_type' and names its type", async () => {
    const gif = Buffer.from('R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7', 'base64');
    const error = await rejection(inspectDocument(gif, DEFAULT_LIMITS));
    expect(error.code).toBe('unsupported_type');
    expect(error.detail).toContain('image/gif');
  });

  it("refuses zero bytes as 'empty'", async () => {
    expect((await rejection(inspectDocument(Buffer.alloc(0), DEFAULT_LIMITS))).code).toBe('empty');
  });
});

describe('inspectDocument: PDFs', () => {
  it('counts the 6 pages of multipage.pdf', async () => {
    expect(await inspectDocument(await fixture('multipage.pdf'), ROOMY_LIMITS)).toEqual({
      kind: 'pdf',
      mimeType: 'application/pdf',
      pages: 6,
    });
  });

  it('refuses multipage.pdf at the default limits, because page 2 embeds an 81 megapixel scan', async () => {
    const error = await rejection(inspectDocument(await fixture('multipage.pdf'), DEFAULT_LIMITS));
    expect(error.code).toBe('too_many_pixels');
    expect(error.detail).toContain('9000 × 9000');
  });

  it('counts the single blank page of trivial.pdf', async () => {
    expect(await inspectDocument(await fixture('trivial.pdf'), DEFAULT_LIMITS)).toMatchObject({ kind: 'pdf', pages: 1 });
  });

  it("refuses invalid.pdf (a header, then EOF) as 'corrupt'", async () => {
    const error = await rejection(inspectDocument(await fixture('invalid.pdf'), DEFAULT_LIMITS));
    expect(error.code).toBe('corrupt');
  });

  it("refuses a PDF that needs a password as 'encrypted'", async () => {
    const locked = encryptedPdf({ userPassword: 'open sesame', ownerPassword: 'owner' });
    const error = await rejection(inspectDocument(locked, DEFAULT_LIMITS));
    expect(error.code).toBe('encrypted');

    // the file is a genuine encrypted PDF: its password opens it
    const opened = await getDocumentProxy(new Uint8Array(locked), { password: 'open sesame', verbosity: 0 });
    expect(opened.numPages).toBe(1);
    await opened.destroy();
  });

  it('accepts an encrypted PDF that opens without a password (owner password only)', async () => {
    const restricted = encryptedPdf({ userPassword: '', ownerPassword: 'owner' });
    expect(await inspectDocument(restricted, DEFAULT_LIMITS)).toMatchObject({ kind: 'pdf', pages: 1 });
  });

  it("refuses a PDF over maxPages as 'too_many_pages' from its count, without visiting each page", async () => {
    // 20 000 blank pages in one flat /Kids array: visiting them all costs pdf.js over a minute
    const count = 20_000;
    const kids = Array.from({ length: count }, (_, index) => `${index + 3} 0 R`).join(' ');
    const page = '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>';
    const thick = pdfFile([
      '<< /Type /Catalog /Pages 2 0 R >>',
      `<< /Type /Pages /Kids [${kids}] /Count ${count} >>`,
      ...Array<string>(count).fill(page),
    ]);
    const started = Date.now();
    const error = await rejection(inspectDocument(thick, { ...DEFAULT_LIMITS, maxPages: 1_000 }));
    expect(error.code).toBe('too_many_pages');
    expect(error.detail).toBe('The PDF has 20,000 pages; the limit is 1,000.');
    expect(Date.now() - started).toBeLessThan(5_000);

    expect(await inspectDocument(await fixture('multipage.pdf'), { ...ROOMY_LIMITS, maxPages: 6 })).toMatchObject({ pages: 6 });
  });

  it("refuses a page that would exceed maxPagePixels at renderDpi as 'too_many_pixels'", async () => {
    const poster = pdfFile([
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 7200 7200] >>',
    ]);
    const error = await rejection(inspectDocument(poster, DEFAULT_LIMITS));
    expect(error.code).toBe('too_many_pixels');
    expect(error.detail).toBe(
      'Page 1 is 100.0 × 100.0 inches: at 200 dpi that is 20000 × 20000 pixels (400 megapixels); the limit is 40 megapixels per page.',
    );
    // the same page fits at a lower resolution
    expect(await inspectDocument(poster, { renderDpi: 50, maxPagePixels: 40_000_000 })).toMatchObject({ pages: 1 });
  });
});

describe('inspectDocument: hostile files are refused from their headers, without decoding', () => {
  it('refuses hugemono.pdf (a 35000 × 35000 image on a 117-inch page) quickly and without memory growth', async () => {
    const bytes = await fixture('hugemono.pdf');
    const rssBefore = process.memoryUsage().rss;
    const started = Date.now();
    for (const limits of [DEFAULT_LIMITS, ROOMY_LIMITS, { renderDpi: 10, maxPagePixels: 40_000_000 }]) {
      const error = await rejection(inspectDocument(bytes, limits));
      expect(error.code).toBe('too_many_pixels');
    }
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
  });

  it('refuses enormous.pdf (a 9000 × 9000 RGB image) by its image at 200 dpi and by its page at 400 dpi', async () => {
    const bytes = await fixture('enormous.pdf');
    const rssBefore = process.memoryUsage().rss;
    const byImage = await rejection(inspectDocument(bytes, DEFAULT_LIMITS));
    expect(byImage.code).toBe('too_many_pixels');
    expect(byImage.detail).toBe('An image in the PDF is 9000 × 9000 pixels (81 megapixels); the limit is 40 megapixels.');
    const byPage = await rejection(inspectDocument(bytes, { ...ROOMY_LIMITS, renderDpi: 400 }));
    expect(byPage.code).toBe('too_many_pixels');
    expect(byPage.detail).toMatch(/^Page 1 is 30\.0 × 30\.0 inches: at 400 dpi that is 12000 × 12000 pixels/);
    expect(process.memoryUsage().rss - rssBefore).toBeLessThan(200 * 1024 * 1024);
  });

  it('refuses images whose headers declare too many pixels', async () => {
    const huge = [
      pngHeader(100_000, 100_000),
      jpegHeader(65_535, 65_535),
      tiffHeader(70_000, 70_000, 'MM'),
      webpVp8xHeader(16_000, 16_000),
    ];
    for (const bytes of huge) {
      const error = await rejection(inspectDocument(bytes, DEFAULT_LIMITS));
      expect(error.code).toBe('too_many_pixels');
    }
  });

  it("refuses a PNG cut inside its header as 'corrupt'", async () => {
    const png = await fixture('linn.png');
    expect((await rejection(inspectDocument(png.subarray(0, 20), DEFAULT_LIMITS))).code).toBe('corrupt');
  });
});

describe('readImageSize', () => {
  it('reads width and height from each header layout', () => {
    expect(readImageSize(pngHeader(2550, 3300), 'png')).toEqual({ width: 2550, height: 3300 });
    expect(readImageSize(jpegHeader(1024, 768), 'jpeg')).toEqual({ width: 1024, height: 768 });
    expect(readImageSize(tiffHeader(640, 480, 'II'), 'tiff')).toEqual({ width: 640, height: 480 });
    expect(readImageSize(tiffHeader(640, 480, 'MM'), 'tiff')).toEqual({ width: 640, height: 480 });
    expect(readImageSize(webpVp8Header(800, 600), 'webp')).toEqual({ width: 800, height: 600 });
    expect(readImageSize(webpVp8lHeader(801, 601), 'webp')).toEqual({ width: 801, height: 601 });
    expect(readImageSize(webpVp8xHeader(9000, 7000), 'webp')).toEqual({ width: 9000, height: 7000 });
  });

  it('matches the dimensions of the real linn.png scan', async () => {
    expect(readImageSize(await fixture('linn.png'), 'png')).toEqual({ width: 2550, height: 3300 });
  });
});

// --- builders of small, valid files -------------------------------------------------------------

/** A PDF from its objects (numbered from 1, object 1 the catalog), with a correct xref table. */
function pdfFile(objects: string[], trailerEntries = ''): Buffer {
  let body = '%PDF-1.4\n';
  const offsets: number[] = [];
  objects.forEach((object, index) => {
    offsets.push(Buffer.byteLength(body, 'latin1'));
    body += `${index + 1} 0 obj\n${object}\nendobj\n`;
  });
  const xref = Buffer.byteLength(body, 'latin1');
  body += `xref\n0 ${objects.length + 1}\n0000000000 65535 f \n`;
  body += offsets.map((offset) => `${String(offset).padStart(10, '0')} 00000 n \n`).join('');
  body += `trailer\n<< /Size ${objects.length + 1} /Root 1 0 R ${trailerEntries} >>\nstartxref\n${xref}\n%%EOF\n`;
  return Buffer.from(body, 'latin1');
}

/**
 * A one-page PDF under the standard security handler, revision 2 (40-bit RC4), with /O and /U
 * computed as ISO 32000-1 7.6.3.3–7.6.3.4 (algorithms 2, 3 and 4) specify. The page has no
 * strings or streams, so nothing else needs encrypting.
 */
function encryptedPdf(passwords: { userPassword: string; ownerPassword: string }): Buffer {
  const padding = Buffer.from('28BF4E5E4E758A4164004E56FFFA01082E2E00B6D0683E802F0CA9FE6453697A', 'hex');
  const padded = (password: string) => Buffer.concat([Buffer.from(password, 'latin1'), padding]).subarray(0, 32);
  const fileId = createHash('md5').update('tally test document').digest();
  const permissions = -44; // print, no modify, no copy
  const ownerKey = createHash('md5').update(padded(passwords.ownerPassword)).digest().subarray(0, 5);
  const owner = rc4(ownerKey, padded(passwords.userPassword));
  const permissionBytes = Buffer.alloc(4);
  permissionBytes.writeInt32LE(permissions);
  const fileKey = createHash('md5')
    .update(padded(passwords.userPassword))
    .update(owner)
    .update(permissionBytes)
    .update(fileId)
    .digest()
    .subarray(0, 5);
  const user = rc4(fileKey, padding);
  return pdfFile(
    [
      '<< /Type /Catalog /Pages 2 0 R >>',
      '<< /Type /Pages /Kids [3 0 R] /Count 1 >>',
      '<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] >>',
      `<< /Filter /Standard /V 1 /R 2 /O <${owner.toString('hex')}> /U <${user.toString('hex')}> /P ${permissions} >>`,
    ],
    `/Encrypt 4 0 R /ID [<${fileId.toString('hex')}> <${fileId.toString('hex')}>]`,
  );
}

/** RC4, which node:crypto no longer offers under OpenSSL 3 without the legacy provider. */
function rc4(key: Buffer, data: Buffer): Buffer {
  const state = Array.from({ length: 256 }, (_, index) => index);
  const swap = (a: number, b: number) => {
    const kept = state[a]!;
    state[a] = state[b]!;
    state[b] = kept;
  };
  for (let i = 0, j = 0; i < 256; i++) {
    j = (j + state[i]! + key[i % key.length]!) & 0xff;
    swap(i, j);
  }
  const output = Buffer.alloc(data.length);
  for (let n = 0, i = 0, j = 0; n < data.length; n++) {
    i = (i + 1) & 0xff;
    j = (j + state[i]!) & 0xff;
    swap(i, j);
    output[n] = data[n]! ^ state[(state[i]! + state[j]!) & 0xff]!;
  }
  return output;
}

/** PNG signature and IHDR chunk (CRC not checked by header readers), no image data. */
function pngHeader(width: number, height: number): Buffer {
  const header = Buffer.alloc(33);
  Buffer.from('89504e470d0a1a0a', 'hex').copy(header, 0);
  header.writeUInt32BE(13, 8);
  header.write('IHDR', 12, 'latin1');
  header.writeUInt32BE(width, 16);
  header.writeUInt32BE(height, 20);
  header.set([8, 0, 0, 0, 0], 24); // 8-bit grayscale
  return header;
}

/** SOI, a JFIF APP0 segment, then a baseline SOF0 frame header. */
function jpegHeader(width: number, height: number): Buffer {
  const app0 = Buffer.from('ffe000104a46494600010100000100010000', 'hex');
  const sof0 = Buffer.alloc(19);
  sof0.set([0xff, 0xc0, 0x00, 0x11, 0x08], 0);
  sof0.writeUInt16BE(height, 5);
  sof0.writeUInt16BE(width, 7);
  sof0.set([0x03, 0x01, 0x22, 0x00, 0x02, 0x11, 0x01, 0x03, 0x11, 0x01], 9);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, sof0]);
}

/** A baseline TIFF header and first IFD with ImageWidth (LONG) and ImageLength (LONG). */
function tiffHeader(width: number, height: number, byteOrder: 'II' | 'MM'): Buffer {
  const little = byteOrder === 'II';
  const file = Buffer.alloc(8 + 2 + 2 * 12 + 4);
  file.write(byteOrder, 0, 'latin1');
  little ? file.writeUInt16LE(42, 2) : file.writeUInt16BE(42, 2);
  little ? file.writeUInt32LE(8, 4) : file.writeUInt32BE(8, 4);
  little ? file.writeUInt16LE(2, 8) : file.writeUInt16BE(2, 8);
  [
    [256, width],
    [257, height],
  ].forEach(([tag, value], index) => {
    const entry = 10 + index * 12;
    if (little) {
      file.writeUInt16LE(tag!, entry);
      file.writeUInt16LE(4, entry + 2);
      file.writeUInt32LE(1, entry + 4);
      file.writeUInt32LE(value!, entry + 8);
    } else {
      file.writeUInt16BE(tag!, entry);
      file.writeUInt16BE(4, entry + 2);
      file.writeUInt32BE(1, entry + 4);
      file.writeUInt32BE(value!, entry + 8);
    }
  });
  return file;
}

function riff(chunk: string, data: Buffer): Buffer {
  const file = Buffer.alloc(20 + data.length);
  file.write('RIFF', 0, 'latin1');
  file.writeUInt32LE(12 + data.length, 4);
  file.write('WEBP', 8, 'latin1');
  file.write(chunk, 12, 'latin1');
  file.writeUInt32LE(data.length, 16);
  data.copy(file, 20);
  return file;
}

/** Lossy WebP: VP8 frame tag, start code 9d 01 2a, 14-bit width and height. */
function webpVp8Header(width: number, height: number): Buffer {
  const data = Buffer.alloc(10);
  data.set([0x30, 0x01, 0x00, 0x9d, 0x01, 0x2a], 0);
  data.writeUInt16LE(width, 6);
  data.writeUInt16LE(height, 8);
  return riff('VP8 ', data);
}

/** Lossless WebP: signature 0x2f, then width − 1 and height − 1 in 14 bits each. */
function webpVp8lHeader(width: number, height: number): Buffer {
  const data = Buffer.alloc(5);
  data[0] = 0x2f;
  data.writeUInt32LE(((width - 1) | ((height - 1) << 14)) >>> 0, 1);
  return riff('VP8L', data);
}

/** Extended WebP: flags, then canvas width − 1 and height − 1 in 24 bits each. */
function webpVp8xHeader(width: number, height: number): Buffer {
  const data = Buffer.alloc(10);
  data.writeUIntLE(width - 1, 4, 3);
  data.writeUIntLE(height - 1, 7, 3);
  return riff('VP8X', data);
}
