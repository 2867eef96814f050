import { create } from 'content-disposition';

/**
 * The `Content-Disposition` header of a download or inline file named `fileName` (RFC 6266; the
 * exact UTF-8 name in `filename*`, RFC 8187), built by the `content-disposition` package. The
 * plain `filename` fallback is the name in printable ASCII, other characters and quotes as `_`.
 */
export function contentDisposition(kind: 'inline' | 'attachment', fileName: string): string {
  const fallback = fileName.replace(/[^\x20-\x7e]/g, '_').replace(/["\\]/g, '_');
  return create(fileName, { type: kind, fallback });
}
