import {
  concatTransformationMatrix,
  drawObject,
  PDFDocument,
  popGraphicsState,
  pushGraphicsState,
  type PDFPage,
} from 'pdf-lib';

/** A 2-D affine map in PDF's order [a b c d e f]: (x, y) → (a·x + c·y + e, b·x + d·y + f). */
export type PdfMatrix = [number, number, number, number, number, number];

/** An OCRed page of a PDF: Tesseract's text-only page and where it goes on the original page. */
export interface TextOverlay {
  /** 0-based index of the page in the original PDF. */
  pageIndex: number;
  /** Tesseract's one-page PDF of invisible text (render mode 3, GlyphLessFont). */
  textPdf: Uint8Array;
  /** The size in pixels of the (upright) image Tesseract read. */
  image: { width: number; height: number };
  /** Maps a pixel of that image (x right, y down) to the original page's user space, in points. */
  toPage: (x: number, y: number) => [number, number];
}

/**
 * The original PDF with an invisible text layer over each OCRed page, as OCRmyPDF does: the pages
 * are the original ones, untouched; each text page from Tesseract's PDF renderer is embedded as a
 * form XObject (pdf-lib) and drawn through {@link overlayMatrix}, so a viewer's selection and search find the
 * words where the reader sees them, whatever the page's rotation. Pages read from their own text
 * layer are left as they are.
 *
 * @throws {Error} when pdf-lib cannot parse the original (the caller decides what to do)
 */
export async function overlayTextLayers(original: Uint8Array, overlays: TextOverlay[]): Promise<Uint8Array> {
  const document = await PDFDocument.load(original, { ignoreEncryption: false, updateMetadata: false });
  const pages = document.getPages();
  for (const overlay of overlays) {
    const page = pages[overlay.pageIndex];
    if (!page) continue;
    const [embedded] = await document.embedPdf(overlay.textPdf, [0]);
    if (!embedded) continue;
    drawForm(page, embedded.ref, overlayMatrix(embedded, overlay.image, overlay.toPage));
  }
  return document.save();
}

/**
 * Joins Tesseract's one-page PDFs (each the page image with its invisible text) into one document,
 * in order: the searchable PDF of an uploaded image (one page per TIFF page).
 */
export async function joinPagePdfs(pagePdfs: Uint8Array[]): Promise<Uint8Array> {
  const document = await PDFDocument.create();
  for (const bytes of pagePdfs) {
    const source = await PDFDocument.load(bytes);
    const [page] = await document.copyPages(source, [0]);
    if (page) document.addPage(page);
  }
  return document.save();
}

/**
 * The matrix that carries a point of the text page (user space of a page `textWidth` × `textHeight`
 * points, origin bottom-left) onto the original page, given `toPage`, which maps a pixel of the
 * upright image Tesseract read (x right, y down, `imageWidth` × `imageHeight`) to the original
 * page's user space. The map is affine, so three points fix it.
 */
export function overlayMatrix(
  text: { width: number; height: number },
  image: { width: number; height: number },
  toPage: (x: number, y: number) => [number, number],
): PdfMatrix {
  const pixel = (u: number, v: number): [number, number] =>
    toPage((u / text.width) * image.width, ((text.height - v) / text.height) * image.height);
  const [ex, ey] = pixel(0, 0);
  const [ux, uy] = pixel(text.width, 0);
  const [vx, vy] = pixel(0, text.height);
  return [(ux - ex) / text.width, (uy - ey) / text.width, (vx - ex) / text.height, (vy - ey) / text.height, ex, ey];
}

function drawForm(page: PDFPage, ref: Parameters<PDFPage['node']['newXObject']>[1], matrix: PdfMatrix): void {
  const name = page.node.newXObject('OcrText', ref);
  page.pushOperators(pushGraphicsState(), concatTransformationMatrix(...matrix), drawObject(name), popGraphicsState());
}
