// The raw engine's parsers (router/http1/): the same verdict whether bytes
// arrive at once, one at a time, or split anywhere.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ChunkedDecoder, INVALID, NEED_MORE } from '../../router/protocols/http1/chunked.ts';
import { parseRequestHead, type ParsedRequest, type RequestHeadError } from '../../router/protocols/http1/request-head.ts';
import { CHUNKED, LENGTH, NO_BODY, UNTIL_CLOSE, clientResponseHead, parseResponseHead, type ParsedResponse } from '../../router/protocols/http1/response-head.ts';

const MAX = 16 * 1024;

/** Feeds `bytes` in the given pieces the way a connection does; the first non-null result. */
function parseInPieces(bytes: Buffer, cuts: readonly number[]): ParsedRequest | RequestHeadError | null {
  let buf: Buffer | null = null;
  let scanned = 0;
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    if (to <= from) continue;
    const piece = bytes.subarray(from, to);
    from = to;
    buf = buf === null ? piece : Buffer.concat([buf, piece]);
    const r = parseRequestHead(buf, MAX, scanned);
    if (r !== null) return r;
    scanned = buf.length;
  }
  return null;
}

const oneByOne = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
function randomCuts(n: number, seed: number): number[] {
  let x = seed;
  const cuts: number[] = [];
  for (let i = 0; i < n; i++) {
    x = (x * 1103515245 + 12345) & 0x7fffffff;
    if (x % 5 === 0) cuts.push(i);
  }
  return cuts;
}

function summary(r: ParsedRequest | RequestHeadError | null): unknown {
  if (r === null) return null;
  if (r.status !== 0) return { status: r.status };
  return { method: r.method, target: r.target, minor: r.minor, raw: r.raw, cl: r.contentLength, chunked: r.chunked, close: r.close, expect: r.expectContinue, len: r.headLength };
}

/** Parses whole, byte by byte and at random cuts; asserts they agree and returns the verdict. */
function parseAllWays(text: string): unknown {
  const bytes = Buffer.from(text, 'latin1');
  const whole = summary(parseInPieces(bytes, []));
  assert.deepEqual(summary(parseInPieces(bytes, oneByOne(bytes.length))), whole, `byte by byte: ${JSON.stringify(text)}`);
  for (let seed = 1; seed < 6; seed++) assert.deepEqual(summary(parseInPieces(bytes, randomCuts(bytes.length, seed))), whole, `seed ${seed}: ${JSON.stringify(text)}`);
  return whole;
}

const H = 'Host: app.test\r\n';

describe('request head parser', () => {
  it('parses a plain GET, with OWS trimmed and names kept as sent', () => {
    const r = parseAllWays(`GET /a?b=1 HTTP/1.1\r\n${H}X-A:  v w \t\r\nConnection: close\r\n\r\nNEXT`) as Record<string, unknown>;
    assert.deepEqual(r, { method: 'GET', target: '/a?b=1', minor: 1, raw: ['Host', 'app.test', 'X-A', 'v w', 'Connection', 'close'], cl: -1, chunked: false, close: true, expect: false, len: 71 });
  });

  it('reads framing: Content-Length, chunked in any case with OWS, Expect, HTTP/1.0 keep-alive', () => {
    assert.deepEqual((parseAllWays(`POST / HTTP/1.1\r\n${H}Content-Length: 42\r\nExpect: 100-continue\r\n\r\n`) as { cl: number; expect: boolean }).cl, 42);
    assert.equal((parseAllWays(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: CHUNKED \r\n\r\n`) as { chunked: boolean }).chunked, true);
    assert.equal((parseAllWays('GET / HTTP/1.0\r\n\r\n') as { close: boolean }).close, true);
    assert.equal((parseAllWays('GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n') as { close: boolean }).close, false);
    assert.equal((parseAllWays(`GET / HTTP/1.1\r\n${H}Connection: keep-alive, close\r\n\r\n`) as { close: boolean }).close, true);
  });

  it('waits for more while the head is incomplete and clean', () => {
    assert.equal(parseAllWays(`GET / HTTP/1.1\r\n${H}X-Partial: abc\r\n`), null);
    assert.equal(parseAllWays('GET / HTTP/1.1\r'), null);
  });

  const refusals: [string, string, number][] = [
    ['bare LF in the request line', `GET / HTTP/1.1\n${H}\r\n`, 400],
    ['bare LF at the end of the head, never completed', `GET / HTTP/1.1\r\n${H}\n`, 400],
    ['bare LF everywhere', 'GET / HTTP/1.1\nHost: a\n\n', 400],
    ['bare CR after the request line', `GET / HTTP/1.1\r${H}\r\n`, 400],
    ['bare CR in a value', `GET / HTTP/1.1\r\n${H}X: a\rb\r\n\r\n`, 400],
    ['obs-fold', `GET / HTTP/1.1\r\n${H}X: a\r\n b\r\n\r\n`, 400],
    ['whitespace before the first field', `GET / HTTP/1.1\r\n ${H}\r\n`, 400],
    ['space before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400],
    ['NUL in a value', `GET / HTTP/1.1\r\n${H}X: a\x00\r\n\r\n`, 400],
    ['DEL in a name', `GET / HTTP/1.1\r\n${H}X\x7f: a\r\n\r\n`, 400],
    ['empty field name', `GET / HTTP/1.1\r\n${H}: a\r\n\r\n`, 400],
    ['missing Host in HTTP/1.1', 'GET / HTTP/1.1\r\n\r\n', 400],
    ['CL and TE', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n`, 400],
    ['two Content-Length', `POST / HTTP/1.1\r\n${H}Content-Length: 5\r\nContent-Length: 5\r\n\r\n`, 400],
    ['Content-Length +5', `POST / HTTP/1.1\r\n${H}Content-Length: +5\r\n\r\n`, 400],
    ['Content-Length list', `POST / HTTP/1.1\r\n${H}Content-Length: 5, 5\r\n\r\n`, 400],
    ['Content-Length beyond 2^53', `POST / HTTP/1.1\r\n${H}Content-Length: 99999999999999999\r\n\r\n`, 400],
    ['two Transfer-Encoding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n`, 400],
    ['chunked not last', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked, gzip\r\n\r\n`, 400],
    ['chunked with an empty last coding', `POST / HTTP/1.1\r\n${H}Transfer-Encoding: chunked,\r\n\r\n`, 400],
    ['lowercase method', `get / HTTP/1.1\r\n${H}\r\n`, 400],
    ['unknown method', `FOO / HTTP/1.1\r\n${H}\r\n`, 400],
    ['CONNECT', `CONNECT a:443 HTTP/1.1\r\n${H}\r\n`, 400],
    ['HTTP/2.0', `GET / HTTP/2.0\r\n${H}\r\n`, 505],
    ['HTTP/1.2', `GET / HTTP/1.2\r\n${H}\r\n`, 400],
    ['HTTP/0.9 form', `GET /\r\n${H}\r\n`, 400],
    ['trailing space after the target', `GET / \r\n${H}\r\n`, 400],
    ['token after the version', `GET / HTTP/1.1 x\r\n${H}\r\n`, 400],
    ['control character in the target', `GET /a\x01 HTTP/1.1\r\n${H}\r\n`, 400],
    ['a head over the limit, never completed', `GET /${'a'.repeat(MAX)}`, 431],
    ['a complete head over the limit', `GET / HTTP/1.1\r\n${H}X: ${'a'.repeat(MAX)}\r\n\r\n`, 431],
  ];
  for (const [name, text, status] of refusals) {
    it(`refuses ${name} with ${status}, however split`, () => assert.deepEqual(parseAllWays(text), { status }));
  }

  it('leaves codings other than chunked to readRequestHead (501 there)', () => {
    assert.equal((parseAllWays(`POST / HTTP/1.1\r\n${H}Transfer-Encoding: gzip, chunked\r\n\r\n`) as { chunked: boolean }).chunked, false);
  });
});

/** Decodes `text` in the given pieces; the message end (absolute offset), or INVALID/NEED_MORE, plus the data. */
function decode(text: string, cuts: readonly number[]): { end: number; data: string; dataBytes: number } {
  const bytes = Buffer.from(text, 'latin1');
  const decoder = new ChunkedDecoder();
  let data = '';
  const sink = (b: Buffer, s: number, e: number) => { data += b.toString('latin1', s, e); };
  let from = 0;
  for (const to of [...cuts, bytes.length]) {
    if (to <= from) continue;
    const piece = Buffer.from(bytes.subarray(from, to));
    const r = decoder.feed(piece, 0, piece.length, sink);
    if (r === INVALID) return { end: INVALID, data, dataBytes: decoder.dataBytes };
    if (r >= 0) return { end: from + r, data, dataBytes: decoder.dataBytes };
    from = to;
  }
  return { end: NEED_MORE, data, dataBytes: decoder.dataBytes };
}

function decodeAllWays(text: string): { end: number; data: string; dataBytes: number } {
  const whole = decode(text, []);
  assert.deepEqual(decode(text, oneByOne(text.length)), whole, `byte by byte: ${JSON.stringify(text)}`);
  for (let seed = 1; seed < 6; seed++) assert.deepEqual(decode(text, randomCuts(text.length, seed)), whole, `seed ${seed}`);
  return whole;
}

describe('chunked decoder', () => {
  it('finds the end of a valid body with extensions and trailers, and the data', () => {
    const body = '5\r\nhello\r\n6;ext=1;q="a b"\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\nY: \r\n\r\n';
    assert.deepEqual(decodeAllWays(`${body}GET / HTTP/1.1\r\n`), { end: body.length, data: 'hello world0123456789', dataBytes: 21 });
    assert.deepEqual(decodeAllWays('0\r\n\r\n'), { end: 5, data: '', dataBytes: 0 });
    const extensions = '5;a;b=c;d="e \\" f"\r\nhello\r\n0;z\r\nContent-Lengthy: 1\r\nHos: 2\r\n\r\n';
    assert.deepEqual(decodeAllWays(extensions), { end: extensions.length, data: 'hello', dataBytes: 5 });
  });

  it('waits for more in the middle of a body', () => {
    assert.equal(decodeAllWays('5\r\nhel').end, NEED_MORE);
    assert.equal(decodeAllWays('5\r\nhello\r\n0\r\nX: y\r\n').end, NEED_MORE);
  });

  const bad: [string, string][] = [
    ['a non-hex size', 'zz\r\n'],
    ['an overflowing size', 'ffffffffffffffffff\r\n'],
    ['a negative size', '-5\r\nhello\r\n'],
    ['a 0x prefix', '0x5\r\nhello\r\n'],
    ['a space after the size', '5 \r\nhello\r\n'],
    ['data without CRLF', '5\r\nhello0\r\n\r\n'],
    ['a size without CRLF', '5hello\r\n'],
    ['bare LF lines', '5\nhello\n0\n\n'],
    ['\\x01 in an extension', '5;a=b\x01c\r\nhello\r\n'],
    ['NUL in an extension', '5;\x00\r\n'],
    ['DEL in a quoted extension', '5;a="\x7f"\r\n'],
    ['a bare CR in an extension', '5;a\rb\r\n'],
    // Chunk extensions have a grammar (RFC 9112 §7.1.1), which llhttp's strict mode enforces too: found by the fuzzer.
    ['an extension without a name', '5;\r\nhello\r\n'],
    ['an extension with an empty name', '5;=""\r\nhello\r\n'],
    ['a space in an extension value', '5;a=b c\r\nhello\r\n'],
    ['an unterminated quoted extension', '5;a="b\r\nhello\r\n'],
    ['an extension with an empty value', '5;a=\r\nhello\r\n'],
    ['text after a quoted extension', '5;a="b"c\r\nhello\r\n'],
    ['\\x01 in a trailer', '5\r\nhello\r\n0\r\nX: a\x01b\r\n\r\n'],
    ['a folded trailer', '0\r\nX: a\r\n b\r\n\r\n'],
    ['a trailer without a name', '0\r\n: a\r\n\r\n'],
    // Found by the request fuzzer: a strict backend refuses framing in trailers (RFC 9110 §6.5.1).
    ['a Content-Length trailer', '0\r\nContent-Length: 5\r\n\r\n'],
    ['a Transfer-Encoding trailer', '0\r\ntransfer-encoding: chunked\r\n\r\n'],
    ['a Host trailer', '0\r\nHOST: x\r\n\r\n'],
    ['a bare CR after the last chunk', '0\r\n\rX'],
  ];
  for (const [name, text] of bad) {
    it(`refuses ${name}, however split`, () => assert.equal(decodeAllWays(text).end, INVALID));
  }
});

describe('response head parser', () => {
  const parse = (text: string, method = 'GET') => parseResponseHead(Buffer.from(text, 'latin1'), method) as ParsedResponse;

  it('reads status, framing and keep-alive, dropping hop-by-hop and Connection-listed fields, and writes the framing itself', () => {
    const r = parse('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: x-secret\r\nX-Secret: 1\r\nKeep-Alive: timeout=5\r\nContent-Length: 5\r\n\r\nhello');
    assert.equal(r.status, 200);
    assert.equal(r.framing, LENGTH);
    assert.equal(r.contentLength, 5);
    assert.equal(r.keepAlive, true);
    assert.equal(r.keepAliveMs, 4000);
    const head = (chunked: boolean, connection: string | null) => {
      const out = clientResponseHead(r, 'id-1', chunked, connection);
      return out.head.toString('latin1', 0, out.length);
    };
    assert.equal(head(false, null), 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nx-request-id: id-1\r\ncontent-length: 5\r\n\r\n');
    assert.equal(head(true, 'close'), 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nx-request-id: id-1\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n');
    const withId = parse('HTTP/1.0 404 Not Found\r\nX-Request-Id: up\r\nConnection: close\r\n\r\n');
    const out = clientResponseHead(withId, 'id-2', false, null);
    assert.equal(out.head.toString('latin1', 0, out.length), 'HTTP/1.1 404 Not Found\r\nX-Request-Id: up\r\n\r\n');
  });

  it('knows bodiless responses, chunked, close-delimited, and announced short keep-alive', () => {
    assert.equal(parse('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n', 'HEAD').framing, NO_BODY);
    assert.equal(parse('HTTP/1.1 204 No Content\r\n\r\n').framing, NO_BODY);
    assert.equal(parse('HTTP/1.1 304 Not Modified\r\n\r\n').framing, NO_BODY);
    assert.equal(parse('HTTP/1.1 100 Continue\r\n\r\n').status, 100);
    const chunked = parse('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n');
    assert.equal(chunked.framing, CHUNKED);
    assert.deepEqual(chunked.fields, []);
    const untilClose = parse('HTTP/1.1 200 OK\r\n\r\n');
    assert.equal(untilClose.framing, UNTIL_CLOSE);
    assert.equal(untilClose.keepAlive, false);
    assert.equal(parse('HTTP/1.1 200 OK\r\nKeep-Alive: timeout=0\r\nContent-Length: 0\r\n\r\n').keepAlive, false);
    assert.equal(parse('HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n').keepAlive, false);
    const empty = clientResponseHead(parse('HTTP/1.1 200 \r\nContent-Length: 0\r\n\r\n'), 'i', false, null);
    assert.equal(empty.head.toString('latin1', 0, empty.length), 'HTTP/1.1 200 \r\nx-request-id: i\r\ncontent-length: 0\r\n\r\n');
  });

  it('replaces the backend\'s Strict-Transport-Security with the route\'s on HTTPS, and keeps it otherwise', () => {
    const r = parse('HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=5\r\nContent-Length: 0\r\n\r\n');
    const head = (hsts: string | null) => {
      const out = clientResponseHead(r, 'i', false, null, hsts);
      return out.head.toString('latin1', 0, out.length);
    };
    assert.equal(head('max-age=600; includeSubDomains'), 'HTTP/1.1 200 OK\r\nx-request-id: i\r\nstrict-transport-security: max-age=600; includeSubDomains\r\ncontent-length: 0\r\n\r\n');
    assert.equal(head(null), 'HTTP/1.1 200 OK\r\nStrict-Transport-Security: max-age=5\r\nx-request-id: i\r\ncontent-length: 0\r\n\r\n');
    assert.equal(head('max-age=1'), head('max-age=1'), 'the parsed response is left as it was');
    assert.equal(r.fields.length, 3, 'Content-Length is not a kept field: the router writes it');
  });

  it('adds the SP after a status code without a reason', () => {
    const out = clientResponseHead(parse('HTTP/1.1 204\r\n\r\n'), 'i', false, null);
    assert.equal(out.head.toString('latin1', 0, out.length), 'HTTP/1.1 204 \r\nx-request-id: i\r\n\r\n');
  });

  it('refuses what is not HTTP/1.x', () => {
    for (const text of ['HTTP/2 200\r\n\r\n', 'HTTP/1.1 20 OK\r\n\r\n', 'HTTP/1.1 200 OK\r\nX : y\r\n\r\n', 'HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n']) {
      assert.equal(typeof parseResponseHead(Buffer.from(text), 'GET'), 'string', text);
    }
    assert.equal(parseResponseHead(Buffer.from('HTTP/1.1 200 OK\r\n'), 'GET'), null);
  });
});
