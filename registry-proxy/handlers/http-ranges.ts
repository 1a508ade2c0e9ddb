// The two range headers of the protocol: `Range: bytes=…` on blob GETs
// (RFC 9110, one range only) and `Content-Range: <start>-<end>` on upload
// chunks (the OCI spec's form; docker's `bytes ` prefix is accepted too).
import type { ByteRange } from '../storage/blob-store.ts';

/**
 * The range to serve of a `size`-byte blob: null for the whole blob (no
 * header, or one this parser does not take, such as several ranges — serving
 * everything is always allowed), or 'unsatisfiable' for a 416.
 */
export function parseRangeHeader(header: string | undefined, size: number): ByteRange | null | 'unsatisfiable' {
  if (!header) return null;
  const match = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!match || (match[1] === '' && match[2] === '')) return null;
  if (match[1] === '') {
    const suffix = Number(match[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(match[1]);
  const end = match[2] === '' ? size - 1 : Math.min(Number(match[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

/** An upload chunk's `Content-Range`, or null when it is malformed. */
export function parseContentRange(header: string): ByteRange | null {
  const match = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  if (!match) return null;
  const range = { start: Number(match[1]), end: Number(match[2]) };
  return Number.isSafeInteger(range.end) && range.end >= range.start ? range : null;
}

/** The `Range` header value an upload reports: the bytes received, `0-<last>` (distribution writes 0-0 for none). */
export function uploadedRange(size: number): string {
  return `0-${Math.max(size - 1, 0)}`;
}
