// The upstream response head: status line, fields and framing (RFC 9112 §6.3),
// and the head an HTTP/1.1 client gets: hop-by-hop fields and those named in
// Connection dropped, X-Request-Id added when the backend set none. Framing (Content-Length,
// Transfer-Encoding) and Connection are never copied from the backend: the
// client head states them from what the router parsed and forwards, so no
// Connection token and no duplicate can leave a response unframed.
import { CR, equalsLower, FIELD_VALUE, hasToken, LF, TCHAR } from './request-head.ts';

/** How the response body is delimited. */
export const NO_BODY = 0;
export const LENGTH = 1;
export const CHUNKED = 2;
export const UNTIL_CLOSE = 3;

export interface ParsedResponse {
  readonly status: number;
  /** The buffer the head was parsed from (fields are copied from it as bytes, never made strings). */
  readonly buf: Buffer;
  /** End of the status line, before its CRLF. */
  readonly statusLineEnd: number;
  /** End-to-end field lines kept for the client: [start, nameEnd, end (after CRLF)] triples into buf. */
  readonly fields: number[];
  readonly hasRequestId: boolean;
  readonly framing: number;
  readonly contentLength: number;
  /** The backend keeps the connection open after this response. */
  readonly keepAlive: boolean;
  /** How long the backend said it keeps an idle connection (Keep-Alive: timeout=N), ms; -1 when it did not say. */
  readonly keepAliveMs: number;
  readonly headLength: number;
}

const HEAD_END = Buffer.from('\r\n\r\n');
export const MAX_RESPONSE_HEAD = 64 * 1024;

/**
 * Parses the response head at the start of `buf`; null when incomplete, a string (the reason)
 * when the backend sent something that is not HTTP/1.x.
 */
export function parseResponseHead(buf: Buffer, requestMethod: string): ParsedResponse | string | null {
  const end = buf.indexOf(HEAD_END);
  if (end < 0) return buf.length > MAX_RESPONSE_HEAD ? 'response head too large' : null;
  const headLength = end + 4;
  // HTTP/1.x SP 3DIGIT SP reason CRLF
  if (buf[0] !== 72 || buf[1] !== 84 || buf[2] !== 84 || buf[3] !== 80 || buf[4] !== 47 || buf[5] !== 49 || buf[6] !== 46 || buf[8] !== 32) return 'invalid status line';
  const minor = buf[7] - 48;
  if (minor !== 0 && minor !== 1) return 'invalid status line';
  const d0 = buf[9] - 48;
  const d1 = buf[10] - 48;
  const d2 = buf[11] - 48;
  if (d0 < 1 || d0 > 5 || d1 < 0 || d1 > 9 || d2 < 0 || d2 > 9) return 'invalid status code';
  const status = d0 * 100 + d1 * 10 + d2;
  const lineEnd = buf.indexOf(CR);
  if (buf[lineEnd + 1] !== LF) return 'bare CR in the status line';
  if (lineEnd > 12 ? buf[12] !== 32 : lineEnd !== 12) return 'invalid status line';
  for (let k = 13; k < lineEnd; k++) if (FIELD_VALUE[buf[k]] === 0) return 'invalid reason phrase';

  const fields: number[] = [];
  let connection: string | null = null;
  let transferEncoding: string | null = null;
  let contentLength = -1;
  let hasRequestId = false;
  let keepAliveMs = -1;
  let pos = lineEnd + 2;
  while (pos < headLength - 2) {
    let j = pos;
    while (buf[j] !== 58 /* : */) {
      if (TCHAR[buf[j]] === 0) return 'invalid response field name';
      j++;
    }
    if (j === pos) return 'empty response field name';
    const nameEnd = j;
    j++;
    while (buf[j] === 32 || buf[j] === 9) j++;
    const valueStart = j;
    while (buf[j] !== CR) {
      if (FIELD_VALUE[buf[j]] === 0) return 'invalid response field value';
      j++;
    }
    if (buf[j + 1] !== LF) return 'bare CR in the response head';
    let valueEnd = j;
    while (valueEnd > valueStart && (buf[valueEnd - 1] === 32 || buf[valueEnd - 1] === 9)) valueEnd--;
    const nameLength = nameEnd - pos;
    let keep = true;
    switch (nameLength) {
      case 2:
        if (equalsLower(buf, pos, nameEnd, 'te')) keep = false;
        break;
      case 7:
        if (equalsLower(buf, pos, nameEnd, 'upgrade') || equalsLower(buf, pos, nameEnd, 'trailer')) keep = false;
        break;
      case 10:
        if (equalsLower(buf, pos, nameEnd, 'connection')) {
          const value = buf.toString('latin1', valueStart, valueEnd).toLowerCase();
          connection = connection === null ? value : `${connection},${value}`;
          keep = false;
        } else if (equalsLower(buf, pos, nameEnd, 'keep-alive')) {
          keepAliveMs = keepAliveTimeout(buf, valueStart, valueEnd);
          keep = false;
        }
        break;
      case 12:
        if (equalsLower(buf, pos, nameEnd, 'x-request-id')) hasRequestId = true;
        break;
      case 14:
        if (equalsLower(buf, pos, nameEnd, 'content-length')) {
          let n = 0;
          if (valueEnd === valueStart || valueEnd - valueStart > 15) return 'invalid Content-Length';
          for (let k = valueStart; k < valueEnd; k++) {
            const d = buf[k] - 48;
            if (d < 0 || d > 9) return 'invalid Content-Length';
            n = n * 10 + d;
          }
          if (contentLength !== -1 && contentLength !== n) return 'conflicting Content-Length';
          contentLength = n;
          keep = false;
        }
        break;
      case 16:
        if (equalsLower(buf, pos, nameEnd, 'proxy-connection')) keep = false;
        break;
      case 17:
        if (equalsLower(buf, pos, nameEnd, 'transfer-encoding')) {
          const value = buf.toString('latin1', valueStart, valueEnd).toLowerCase();
          transferEncoding = transferEncoding === null ? value : `${transferEncoding},${value}`;
          keep = false;
        }
        break;
    }
    if (keep) fields.push(pos, nameEnd, j + 2);
    pos = j + 2;
  }

  let framing: number;
  if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) {
    framing = NO_BODY;
  } else if (transferEncoding !== null) {
    // RFC 9112 §6.3: Transfer-Encoding overrides Content-Length; chunked last or read until close.
    const last = transferEncoding.slice(transferEncoding.lastIndexOf(',') + 1).trim();
    framing = last === 'chunked' ? CHUNKED : UNTIL_CLOSE;
    contentLength = -1;
  } else {
    framing = contentLength >= 0 ? LENGTH : UNTIL_CLOSE;
  }
  // A backend that sends a body where none belongs (HEAD, a 204 or 304 that declares one) may send it
  // after the head, in a later read, to whichever request uses the connection next: not reused.
  const strayBody = framing === NO_BODY && status >= 200 && (requestMethod === 'HEAD' || transferEncoding !== null || (status === 204 && contentLength > 0));
  // A 1xx or 204 never has a Content-Length (RFC 9110 §8.6); HEAD and 304 keep it as metadata.
  if (status < 200 || status === 204) contentLength = -1;
  let keepAlive = minor === 1;
  // The common case, `Connection: keep-alive` alone, lists no field to drop.
  if (connection !== null && connection !== 'keep-alive') {
    if (hasToken(connection, 'close')) keepAlive = false;
    else if (minor === 0 && hasToken(connection, 'keep-alive')) keepAlive = true;
    dropListed(buf, fields, connection);
  }
  if (framing === UNTIL_CLOSE) keepAlive = false;
  if (strayBody) keepAlive = false;
  // As undici does: trust an announced idle timeout minus 1 s for the race; none left means no reuse.
  if (keepAliveMs >= 0) {
    keepAliveMs -= 1000;
    if (keepAliveMs <= 0) keepAlive = false;
  }
  return { status, buf, statusLineEnd: lineEnd, fields, hasRequestId, framing, contentLength, keepAlive, keepAliveMs, headLength };
}

const HTTP11 = 'HTTP/1.1 ';
const REQUEST_ID = 'x-request-id: ';
const CHUNKED_FIELD = 'transfer-encoding: chunked\r\n';
const LENGTH_FIELD = 'content-length: ';
const CONNECTION = 'connection: ';

const STS = 'strict-transport-security';
const STS_FIELD = `${STS}: `;

/**
 * The head for the client, as one Buffer: status line, kept fields copied byte for byte, request id,
 * then our framing (`chunked`: re-chunked; else the parsed Content-Length, when there is one) and Connection. `hsts`: the route's Strict-Transport-Security on HTTPS, which
 * replaces the backend's (null: the backend's is kept). `extra`: fields the core adds, flat [name, value, ...], or null.
 */
export function clientResponseHead(res: ParsedResponse, requestId: string, chunked: boolean, connection: string | null, hsts: string | null = null, extra: readonly string[] | null = null): { head: Buffer; length: number } {
  const buf = res.buf;
  const fields = hsts === null ? res.fields : withoutField(buf, res.fields, STS);
  // A status line without a reason still gets the SP after the code (RFC 9112 §4).
  const bare = res.statusLineEnd === 12;
  let length = HTTP11.length + res.statusLineEnd - 9 + (bare ? 1 : 0) + 2 + 2;
  for (let i = 0; i < fields.length; i += 3) length += fields[i + 2] - fields[i];
  if (!res.hasRequestId) length += REQUEST_ID.length + requestId.length + 2;
  const contentLength = chunked || res.contentLength < 0 ? '' : String(res.contentLength);
  if (chunked) length += CHUNKED_FIELD.length;
  else if (contentLength !== '') length += LENGTH_FIELD.length + contentLength.length + 2;
  if (connection !== null) length += CONNECTION.length + connection.length + 2;
  if (hsts !== null) length += STS_FIELD.length + hsts.length + 2;
  if (extra !== null) for (let i = 0; i < extra.length; i += 2) length += Buffer.byteLength(extra[i], 'latin1') + 2 + Buffer.byteLength(extra[i + 1], 'latin1') + 2;
  const head = Buffer.allocUnsafe(length);
  let at = head.write(HTTP11, 0, 'latin1');
  if (bare) {
    at += buf.copy(head, at, 9, 12);
    head[at++] = 32;
    head[at++] = 13;
    head[at++] = 10;
  } else {
    at += buf.copy(head, at, 9, res.statusLineEnd + 2);
  }
  for (let i = 0; i < fields.length; i += 3) at += buf.copy(head, at, fields[i], fields[i + 2]);
  if (!res.hasRequestId) {
    at += head.write(REQUEST_ID, at, 'latin1');
    at += head.write(requestId, at, 'latin1');
    head[at++] = 13;
    head[at++] = 10;
  }
  if (hsts !== null) {
    at += head.write(STS_FIELD, at, 'latin1');
    at += head.write(hsts, at, 'latin1');
    head[at++] = 13;
    head[at++] = 10;
  }
  if (extra !== null) {
    for (let i = 0; i < extra.length; i += 2) {
      at += head.write(extra[i], at, 'latin1');
      head[at++] = 58;
      head[at++] = 32;
      at += head.write(extra[i + 1], at, 'latin1');
      head[at++] = 13;
      head[at++] = 10;
    }
  }
  if (chunked) {
    at += head.write(CHUNKED_FIELD, at, 'latin1');
  } else if (contentLength !== '') {
    at += head.write(LENGTH_FIELD, at, 'latin1');
    at += head.write(contentLength, at, 'latin1');
    head[at++] = 13;
    head[at++] = 10;
  }
  if (connection !== null) {
    at += head.write(CONNECTION, at, 'latin1');
    at += head.write(connection, at, 'latin1');
    head[at++] = 13;
    head[at++] = 10;
  }
  head[at++] = 13;
  head[at++] = 10;
  return { head, length: at };
}

const TIMEOUT = Buffer.from('timeout=');

/** timeout=N of a Keep-Alive value in buf[start, end), in ms; -1 without one. */
function keepAliveTimeout(buf: Buffer, start: number, end: number): number {
  let i = start;
  for (;;) {
    i = buf.indexOf(TIMEOUT, i);
    if (i < 0 || i >= end) return -1;
    const before = i === start ? 44 : buf[i - 1];
    i += TIMEOUT.length;
    if (before === 44 || before === 59 || before === 32 || before === 9) break;
  }
  let n = 0;
  let digits = 0;
  for (; i < end && digits < 9; i++, digits++) {
    const d = buf[i] - 48;
    if (d < 0 || d > 9) break;
    n = n * 10 + d;
  }
  return digits === 0 ? -1 : n * 1000;
}

/** `fields` without those named `lower`; the same array when there are none (no copy per response). */
function withoutField(buf: Buffer, fields: readonly number[], lower: string): readonly number[] {
  for (let i = 0; i < fields.length; i += 3) {
    if (equalsLower(buf, fields[i], fields[i + 1], lower)) {
      const kept = fields.slice();
      removeField(buf, kept, lower);
      return kept;
    }
  }
  return fields;
}

function removeField(buf: Buffer, fields: number[], lower: string): void {
  let out = 0;
  for (let i = 0; i < fields.length; i += 3) {
    if (equalsLower(buf, fields[i], fields[i + 1], lower)) continue;
    fields[out++] = fields[i];
    fields[out++] = fields[i + 1];
    fields[out++] = fields[i + 2];
  }
  fields.length = out;
}

function dropListed(buf: Buffer, fields: number[], connection: string): void {
  const listed = connection.split(',').map((t) => t.trim()).filter((t) => t !== '' && t !== 'close' && t !== 'keep-alive');
  for (const name of listed) removeField(buf, fields, name);
}
