// A strict reader of the bytes a client received on one connection: splits
// them into responses exactly as RFC 9112 §6.3 frames them, and refuses what a
// strict client would (no obs-fold, bare LF, more than one Content-Length,
// Transfer-Encoding other than chunked or with Content-Length). The fuzzers
// use it on raw sockets, where responses may run into each other; a response
// that is not well framed is reported, never guessed around.

export interface StreamResponse {
  readonly status: number;
  /** Field names lowercased, in order. */
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Buffer;
  /** Framed by Content-Length or chunked (false: read until the connection closed). */
  readonly framed: boolean;
}

export interface ResponseStream {
  /** Final responses, 1xx left out (counted in `interim`). */
  readonly responses: readonly StreamResponse[];
  readonly interim: number;
  /** Why the bytes after the last whole response are not a response, or null. */
  readonly error: string | null;
  /** Bytes after the last whole response (an incomplete one, or garbage). */
  readonly rest: number;
  /**
   * Bytes after a response with `Connection: close`, which a client never reads (e.g. the body of
   * a refusal of a request the router could not parse, sent after a HEAD).
   */
  readonly afterClose: number;
}

const STATUS_LINE = /^HTTP\/1\.[01] ([1-5]\d\d) [\t\x20-\x7e\x80-\xff]*$/;
const FIELD_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\t\x20-\x7e\x80-\xff]*?)[\t ]*$/;

export function header(res: StreamResponse, name: string): string | undefined {
  return res.headers.find(([n]) => n === name)?.[1];
}

/**
 * Reads `bytes` as the responses to requests whose methods `methodOf(i, headers)` gives (HEAD
 * responses have no body; the response's fields may tell which request it answers).
 * `closed`: the connection ended, so a response without framing ends here.
 */
export function readResponses(bytes: Buffer, closed: boolean, methodOf: (index: number, headers: readonly (readonly [string, string])[]) => string = () => 'GET'): ResponseStream {
  const text = bytes.toString('latin1');
  const responses: StreamResponse[] = [];
  let interim = 0;
  let at = 0;
  const fail = (error: string): ResponseStream => ({ responses, interim, error, rest: text.length - at, afterClose: 0 });
  while (at < text.length) {
    const last = responses.at(-1);
    if (last !== undefined && last.headers.some(([n, v]) => n === 'connection' && /(^|,)\s*close\s*(,|$)/i.test(v))) {
      return { responses, interim, error: null, rest: 0, afterClose: text.length - at };
    }
    const headEnd = text.indexOf('\r\n\r\n', at);
    if (headEnd < 0) {
      if (/(^|[^\r])\n|\r(?!\n|$)/.test(text.slice(at))) return fail('bare CR or LF in a response head');
      return fail(closed ? 'connection closed inside a response head' : 'incomplete response head');
    }
    const lines = text.slice(at, headEnd).split('\r\n');
    const status = STATUS_LINE.exec(lines[0]);
    if (status === null) return fail(`not a status line: ${JSON.stringify(lines[0].slice(0, 80))}`);
    const code = Number(status[1]);
    const headers: [string, string][] = [];
    for (const line of lines.slice(1)) {
      const field = FIELD_LINE.exec(line);
      if (field === null) return fail(`not a field line: ${JSON.stringify(line.slice(0, 80))}`);
      headers.push([field[1].toLowerCase(), field[2]]);
    }
    const bodyStart = headEnd + 4;
    if (code < 200) {
      interim++;
      at = bodyStart;
      continue;
    }
    const lengths = headers.filter(([n]) => n === 'content-length');
    const codings = headers.filter(([n]) => n === 'transfer-encoding');
    if (lengths.length > 1) return fail('more than one Content-Length');
    if (codings.length > 1) return fail('more than one Transfer-Encoding');
    if (lengths.length === 1 && codings.length === 1) return fail('both Content-Length and Transfer-Encoding');
    const method = methodOf(responses.length, headers);
    if (method === 'HEAD' || code === 204 || code === 304) {
      if (code === 204 && (lengths.length > 0 || codings.length > 0)) return fail('a 204 with framing fields');
      responses.push({ status: code, headers, body: Buffer.alloc(0), framed: true });
      at = bodyStart;
      continue;
    }
    if (codings.length === 1) {
      if (codings[0][1].toLowerCase() !== 'chunked') return fail(`Transfer-Encoding: ${codings[0][1]}`);
      const chunked = readChunked(text, bodyStart);
      if (typeof chunked === 'string') return fail(chunked);
      if (chunked === null) return fail(closed ? 'connection closed inside a chunked body' : 'incomplete chunked body');
      responses.push({ status: code, headers, body: Buffer.from(chunked.body, 'latin1'), framed: true });
      at = chunked.end;
      continue;
    }
    if (lengths.length === 1) {
      if (!/^\d{1,15}$/.test(lengths[0][1])) return fail(`Content-Length: ${lengths[0][1]}`);
      const end = bodyStart + Number(lengths[0][1]);
      if (end > text.length) return fail(closed ? 'connection closed inside a body' : 'incomplete body');
      responses.push({ status: code, headers, body: Buffer.from(text.slice(bodyStart, end), 'latin1'), framed: true });
      at = end;
      continue;
    }
    // No framing: the body runs until the connection closes, and nothing can follow it.
    if (!closed) return fail('an unframed response on a connection still open');
    responses.push({ status: code, headers, body: Buffer.from(text.slice(bodyStart), 'latin1'), framed: false });
    at = text.length;
  }
  return { responses, interim, error: null, rest: 0, afterClose: 0 };
}

/** A chunked body from `at`: its data and where it ends, null when incomplete, or why it is invalid. */
function readChunked(text: string, at: number): { body: string; end: number } | string | null {
  let body = '';
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at);
    if (lineEnd < 0) return null;
    const line = /^([0-9A-Fa-f]{1,15})(?:;[!#$%&'*+\-.^_`|~0-9A-Za-z=" \t]*)?$/.exec(text.slice(at, lineEnd));
    if (line === null) return `invalid chunk-size line: ${JSON.stringify(text.slice(at, Math.min(lineEnd, at + 40)))}`;
    const size = parseInt(line[1], 16);
    at = lineEnd + 2;
    if (size === 0) break;
    if (at + size + 2 > text.length) return null;
    if (text.slice(at + size, at + size + 2) !== '\r\n') return 'chunk data not followed by CRLF';
    body += text.slice(at, at + size);
    at += size + 2;
  }
  // Trailer section: field lines, then an empty line.
  for (;;) {
    const lineEnd = text.indexOf('\r\n', at);
    if (lineEnd < 0) return null;
    const line = text.slice(at, lineEnd);
    at = lineEnd + 2;
    if (line === '') return { body, end: at };
    if (!FIELD_LINE.test(line)) return `invalid trailer line: ${JSON.stringify(line.slice(0, 40))}`;
  }
}
