// A strict HTTP/1.1 request-head parser over Buffers (RFC 9112), at least as
// strict as llhttp in strict mode: CRLF line endings only, no obs-fold, no
// control characters, tokens where tokens belong, one Content-Length, one
// Transfer-Encoding with chunked last, Host required in HTTP/1.1. The header
// list it returns is the flat [name, value, ...] form forward-headers.ts reads.
//
// The caller hands it everything buffered since the head began; it answers
// "incomplete" (null), a refusal (status 400/431/501/505), or the parsed head.
// A bare CR or LF is refused as soon as it arrives, so a client that never
// sends CRLFCRLF is not waited for.

export interface ParsedRequest {
  readonly status: 0;
  readonly method: string;
  readonly target: string;
  /** 0 or 1 (HTTP/1.0 or HTTP/1.1). */
  readonly minor: number;
  /** Headers as sent, flat [name, value, ...], values without surrounding whitespace. */
  readonly raw: string[];
  /** -1 without a Content-Length. */
  readonly contentLength: number;
  readonly chunked: boolean;
  /** The client asked for the connection to be closed after this exchange. */
  readonly close: boolean;
  readonly expectContinue: boolean;
  /** `Upgrade: websocket` (handed to the WebSocket proxy when there is one). */
  readonly websocket: boolean;
  /** Bytes of the head, CRLFCRLF included. */
  readonly headLength: number;
}

export interface RequestHeadError {
  readonly status: 400 | 431 | 501 | 505;
  readonly reason: string;
}

export const CR = 13;
export const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** tchar (RFC 9110 §5.6.2), as a lookup table. */
export const TCHAR = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz") TCHAR[c.charCodeAt(0)] = 1;

/** Bytes allowed in a field value: HTAB, SP, VCHAR, obs-text. */
export const FIELD_VALUE = new Uint8Array(256);
FIELD_VALUE[HTAB] = 1;
for (let c = 0x20; c < 0x7f; c++) FIELD_VALUE[c] = 1;
for (let c = 0x80; c < 0x100; c++) FIELD_VALUE[c] = 1;

/** The methods llhttp knows (an unknown method is refused with 400, as today). */
const METHODS = new Set([
  'DELETE', 'GET', 'HEAD', 'POST', 'PUT', 'OPTIONS', 'TRACE', 'PATCH', 'COPY', 'LOCK', 'MKCOL', 'MOVE',
  'PROPFIND', 'PROPPATCH', 'SEARCH', 'UNLOCK', 'BIND', 'REBIND', 'UNBIND', 'ACL', 'REPORT', 'MKACTIVITY',
  'CHECKOUT', 'MERGE', 'M-SEARCH', 'NOTIFY', 'SUBSCRIBE', 'UNSUBSCRIBE', 'PURGE', 'MKCALENDAR', 'LINK',
  'UNLINK', 'SOURCE', 'QUERY',
]);

const HEAD_END = Buffer.from('\r\n\r\n');
const MAX_SAFE_DIGITS = 15;

function refuse(status: RequestHeadError['status'], reason: string): RequestHeadError {
  return { status, reason };
}

/** Whether buf[start, start+name.length) equals `name` (lowercase ASCII) case-insensitively. */
export function equalsLower(buf: Buffer, start: number, end: number, name: string): boolean {
  if (end - start !== name.length) return false;
  for (let i = 0; i < name.length; i++) if ((buf[start + i] | 0x20) !== name.charCodeAt(i)) return false;
  return true;
}

/** The first bare CR or LF in buf[from, to), or -1. A CR at the very end may still be followed by LF. */
export function findBareLineEnd(buf: Buffer, from: number, to: number): number {
  for (let i = from; i < to; i++) {
    const c = buf[i];
    if (c === LF && (i === 0 || buf[i - 1] !== CR)) return i;
    if (c === CR && i + 1 < to && buf[i + 1] !== LF) return i;
  }
  return -1;
}

/**
 * Parses the request head at the start of `buf`. `scanned` is how many bytes of `buf` earlier calls
 * already checked for bare line ends (so bytes arriving one at a time cost O(n) in all).
 */
export function parseRequestHead(buf: Buffer, maxHeaderSize: number, scanned = 0): ParsedRequest | RequestHeadError | null {
  const end = buf.indexOf(HEAD_END);
  if (end < 0) {
    if (findBareLineEnd(buf, scanned > 0 ? scanned - 1 : 0, buf.length) >= 0) return refuse(400, 'bare CR or LF');
    if (buf.length > maxHeaderSize) return refuse(431, 'request head too large');
    return null;
  }
  const headLength = end + 4;
  if (headLength > maxHeaderSize) return refuse(431, 'request head too large');

  // Request line: method SP request-target SP HTTP-version CRLF
  const lineEnd = buf.indexOf(CR);
  if (buf[lineEnd + 1] !== LF) return refuse(400, 'bare CR');
  let i = 0;
  while (i < lineEnd && buf[i] !== SP) {
    if (TCHAR[buf[i]] === 0) return refuse(400, 'invalid method');
    i++;
  }
  if (i === 0 || i === lineEnd) return refuse(400, 'invalid request line');
  const method = methodOf(buf, i);
  if (method === null) return refuse(400, 'unknown method');
  const targetStart = ++i;
  while (i < lineEnd && buf[i] !== SP) {
    const c = buf[i];
    if (c <= SP || c >= 0x7f) return refuse(400, 'invalid request target');
    i++;
  }
  if (i === targetStart || i === lineEnd) return refuse(400, 'invalid request line');
  const target = buf.toString('latin1', targetStart, i);
  i++;
  if (lineEnd - i !== 8 || buf[i] !== 72 || buf[i + 1] !== 84 || buf[i + 2] !== 84 || buf[i + 3] !== 80 || buf[i + 4] !== 47 || buf[i + 6] !== 46) {
    return refuse(400, 'invalid HTTP version');
  }
  const major = buf[i + 5] - 48;
  const minor = buf[i + 7] - 48;
  if (major < 0 || major > 9 || minor < 0 || minor > 9) return refuse(400, 'invalid HTTP version');
  if (major >= 2) return refuse(505, 'unsupported HTTP version');
  if (major !== 1 || minor > 1) return refuse(400, 'unsupported HTTP version');
  if (method === 'CONNECT') return refuse(400, 'CONNECT is not supported');

  const raw: string[] = [];
  let contentLength = -1;
  let transferEncoding: string | null = null;
  let hosts = 0;
  let close = minor === 0;
  let expectContinue = false;
  let websocket = false;
  let pos = lineEnd + 2;
  while (pos < headLength - 2) {
    const c0 = buf[pos];
    if (c0 === SP || c0 === HTAB) return refuse(400, 'obs-fold or whitespace before a field name');
    let j = pos;
    while (buf[j] !== COLON) {
      if (TCHAR[buf[j]] === 0) return refuse(400, 'invalid field name');
      j++;
    }
    if (j === pos) return refuse(400, 'empty field name');
    const nameEnd = j;
    j++;
    while (buf[j] === SP || buf[j] === HTAB) j++;
    const valueStart = j;
    while (buf[j] !== CR) {
      if (FIELD_VALUE[buf[j]] === 0) return refuse(400, 'invalid character in a field value');
      j++;
    }
    if (buf[j + 1] !== LF) return refuse(400, 'bare CR');
    let valueEnd = j;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === SP || buf[valueEnd - 1] === HTAB)) valueEnd--;
    const name = buf.toString('latin1', pos, nameEnd);
    const value = buf.toString('latin1', valueStart, valueEnd);
    raw.push(name, value);
    switch (nameEnd - pos) {
      case 4:
        if (equalsLower(buf, pos, nameEnd, 'host')) hosts++;
        break;
      case 6:
        if (equalsLower(buf, pos, nameEnd, 'expect') && value.toLowerCase() === '100-continue') expectContinue = true;
        break;
      case 7:
        if (equalsLower(buf, pos, nameEnd, 'upgrade') && equalsLower(buf, valueStart, valueEnd, 'websocket')) websocket = true;
        break;
      case 10:
        if (equalsLower(buf, pos, nameEnd, 'connection')) {
          const tokens = value.toLowerCase();
          if (hasToken(tokens, 'close')) close = true;
          else if (minor === 0 && hasToken(tokens, 'keep-alive')) close = false;
        }
        break;
      case 14:
        if (equalsLower(buf, pos, nameEnd, 'content-length')) {
          if (contentLength !== -1) return refuse(400, 'more than one Content-Length');
          if (valueEnd === valueStart || valueEnd - valueStart > MAX_SAFE_DIGITS) return refuse(400, 'invalid Content-Length');
          let n = 0;
          for (let k = valueStart; k < valueEnd; k++) {
            const d = buf[k] - 48;
            if (d < 0 || d > 9) return refuse(400, 'invalid Content-Length');
            n = n * 10 + d;
          }
          contentLength = n;
        }
        break;
      case 17:
        if (equalsLower(buf, pos, nameEnd, 'transfer-encoding')) {
          if (transferEncoding !== null) return refuse(400, 'more than one Transfer-Encoding');
          transferEncoding = value;
        }
        break;
    }
    pos = j + 2;
  }

  let chunked = false;
  if (transferEncoding !== null) {
    if (contentLength !== -1) return refuse(400, 'both Content-Length and Transfer-Encoding');
    const codings = transferEncoding.toLowerCase().split(',');
    for (let k = 0; k < codings.length; k++) {
      const coding = codings[k].trim();
      // chunked anywhere but last cannot be framed: refused like llhttp does; other codings are left
      // to readRequestHead (501 for codings we do not implement, 400 in HTTP/1.0).
      if (coding === 'chunked' && k !== codings.length - 1) return refuse(400, 'chunked is not the last transfer coding');
    }
    chunked = codings.length === 1 && codings[0].trim() === 'chunked';
  }
  if (hosts === 0 && minor === 1) return refuse(400, 'missing Host header');
  return { status: 0, method, target, minor, raw, contentLength, chunked, close, expectContinue, websocket, headLength };
}

function methodOf(buf: Buffer, len: number): string | null {
  // The common methods without allocating a string.
  if (len === 3 && buf[0] === 71 && buf[1] === 69 && buf[2] === 84) return 'GET';
  if (len === 4 && buf[0] === 80 && buf[1] === 79 && buf[2] === 83 && buf[3] === 84) return 'POST';
  if (len === 4 && buf[0] === 72 && buf[1] === 69 && buf[2] === 65 && buf[3] === 68) return 'HEAD';
  const method = buf.toString('latin1', 0, len);
  if (method === 'CONNECT') return method;
  return METHODS.has(method) ? method : null;
}

/** Whether a lowercase comma-separated list holds `token`. */
export function hasToken(list: string, token: string): boolean {
  if (list === token) return true;
  for (const part of list.split(',')) if (part.trim() === token) return true;
  return false;
}
