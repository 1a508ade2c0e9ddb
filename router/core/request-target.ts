// The request target as the router routes and forwards it, for every protocol:
// origin-form or absolute-form (RFC 9112 §3.2; the absolute form's authority
// replaces Host), and the path normalised so that routing and the backend see
// the same resource (RFC 3986 §6.2.2): percent-encoded unreserved characters
// decoded, dot segments removed (§5.2.4). The normalised path is what is
// forwarded, so no `..` can climb out of the prefix that selected the route.
// Refused (400): a malformed percent-escape, an encoded `/` or `\` or NUL
// (`%2F`, `%5C`, `%00`: a backend that decodes them would see other segments
// than the router routed on), a raw `\` (some backends read it as `/`), and a
// fragment. Empty segments (`//`) are kept. The query is never touched.
import { isValidHost } from './forward-headers.ts';

export interface RequestTarget {
  /** The absolute form's authority as sent (it becomes the upstream's Host), or null for the origin form. */
  readonly authority: string | null;
  /** The normalised path with its query, starting with '/'. */
  readonly path: string;
}

export interface TargetError {
  readonly error: string;
}

/** 0: keep as is; 1: unreserved (decode); 2: refuse. Indexed by the decoded byte. */
const ESCAPE_CLASS = new Uint8Array(256);
for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~') ESCAPE_CLASS[c.charCodeAt(0)] = 1;
ESCAPE_CLASS[0x2f] = 2; // '/'
ESCAPE_CLASS[0x5c] = 2; // '\'
ESCAPE_CLASS[0x00] = 2;

const ABSOLUTE = /^https?:\/\/([^/?#]+)([^#]*)$/i;

/** Parses and normalises a request target (HTTP/1.1 request line, or HTTP/2 `:path`). */
export function parseRequestTarget(raw: string): RequestTarget | TargetError {
  if (raw.charCodeAt(0) === 47 /* / */) {
    const path = normalizePath(raw);
    return typeof path === 'string' ? { authority: null, path } : path;
  }
  const match = ABSOLUTE.exec(raw);
  if (match === null || !isValidHost(match[1])) return { error: 'invalid request target' };
  const rest = match[2];
  const path = normalizePath(rest === '' ? '/' : rest.charCodeAt(0) === 63 /* ? */ ? `/${rest}` : rest);
  return typeof path === 'string' ? { authority: match[1], path } : path;
}

/** The normalised path and query of an origin-form target, or why it is refused. */
export function normalizePath(target: string): string | TargetError {
  let end = target.indexOf('?');
  if (end < 0) end = target.length;
  // The common case costs four scans and no allocation.
  if (target.indexOf('#') >= 0) return { error: 'fragment in the request target' };
  const backslash = target.indexOf('\\');
  if (backslash >= 0 && backslash < end) return { error: 'backslash in the path' };
  const dotSegment = target.indexOf('/.');
  const percent = target.indexOf('%');
  if ((dotSegment < 0 || dotSegment >= end) && (percent < 0 || percent >= end)) return target;
  let path = target.slice(0, end);
  if (percent >= 0 && percent < end) {
    const decoded = decodeUnreserved(path);
    if (typeof decoded !== 'string') return decoded;
    path = decoded;
  }
  return removeDotSegments(path) + target.slice(end);
}

function hexValue(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  const lower = c | 0x20;
  if (lower >= 97 && lower <= 102) return lower - 87;
  return -1;
}

function decodeUnreserved(path: string): string | TargetError {
  let out = '';
  let from = 0;
  for (let i = path.indexOf('%'); i >= 0; i = path.indexOf('%', i + 1)) {
    const hi = hexValue(path.charCodeAt(i + 1));
    const lo = hexValue(path.charCodeAt(i + 2));
    if (hi < 0 || lo < 0) return { error: 'malformed percent-encoding in the path' };
    const byte = hi * 16 + lo;
    const kind = ESCAPE_CLASS[byte];
    if (kind === 2) return { error: 'encoded slash, backslash or NUL in the path' };
    if (kind === 1) {
      out += path.slice(from, i) + String.fromCharCode(byte);
      from = i + 3;
    }
    i += 2;
  }
  return from === 0 ? path : out + path.slice(from);
}

/** RFC 3986 §5.2.4 for an absolute path: `.` and `..` segments resolved, never above the root. */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  // segments[0] is '' (the path starts with '/').
  for (let i = 1; i < segments.length; i++) {
    const segment = segments[i];
    const last = i === segments.length - 1;
    if (segment === '.' || segment === '..') {
      if (segment === '..' && out.length > 0) out.pop();
      // A trailing dot segment leaves the directory: "/a/b/.." is "/a/".
      if (last) out.push('');
      continue;
    }
    out.push(segment);
  }
  return `/${out.join('/')}`;
}
