// Malformed and smuggling-shaped HTTP/1.1 requests, as raw bytes, with the
// status a strict server answers each with (RFC 9112 and an intermediary's
// checks). Shared by the single-router battery (test/router/bad-input.test.ts)
// and the cluster's battery under load (test/cluster/bad-input-at-scale.test.ts).
// Every request names the host `app.test`.

export const HOST = 'Host: app.test\r\n';
export const SMUGGLED = 'GET /smuggled HTTP/1.1\r\nHost: app.test\r\n\r\n';
export const CHUNKED_HELLO = '5\r\nhello\r\n0\r\n\r\n';

export interface BadCase {
  readonly name: string;
  readonly bytes: string;
  /** The status the router answers with. */
  readonly status: number;
  /**
   * The head is valid and only the body turns out bad, so the router may already be streaming the
   * request (to STREAMED_TARGET) when the parser fails: the backend may see that head, never a complete request.
   */
  readonly streamed?: true;
}

export const STREAMED_TARGET = '/bad-body';

/** A POST head with `headers`, then `body`. */
function post(headers: string, body: string, target = '/'): string {
  return `POST ${target} HTTP/1.1\r\n${HOST}${headers}\r\n${body}`;
}

/** A chunked POST whose body is bad, to STREAMED_TARGET. */
function badChunks(name: string, body: string): BadCase {
  return { name, status: 400, streamed: true, bytes: post('Transfer-Encoding: chunked\r\n', body, STREAMED_TARGET) };
}

function getWith(headers: string): string {
  return `GET / HTTP/1.1\r\n${HOST}${headers}\r\n`;
}

const hex = (n: number) => n.toString(16);

const smuggling: BadCase[] = [
  // Front end reads CL (the whole rest), back end reads chunked and sees /smuggled as a second request.
  { name: 'CL.TE: Content-Length covering a chunked body with a request after it', status: 400, bytes: post(`Content-Length: ${5 + SMUGGLED.length}\r\nTransfer-Encoding: chunked\r\n`, `0\r\n\r\n${SMUGGLED}`) },
  // Front end reads chunked (the whole rest), back end reads CL 4 and sees /smuggled as a second request.
  { name: 'TE.CL: a chunk holding a request, with a short Content-Length', status: 400, bytes: post('Content-Length: 4\r\nTransfer-Encoding: chunked\r\n', `${hex(SMUGGLED.length)}\r\n${SMUGGLED}\r\n0\r\n\r\n`) },
  { name: 'TE.CL with Transfer-Encoding first', status: 400, bytes: post('Transfer-Encoding: chunked\r\nContent-Length: 4\r\n', `${hex(SMUGGLED.length)}\r\n${SMUGGLED}\r\n0\r\n\r\n`) },
  { name: 'Content-Length with an obfuscated Transfer-Encoding: xchunked', status: 400, bytes: post('Content-Length: 4\r\nTransfer-Encoding: xchunked\r\n', `${hex(SMUGGLED.length)}\r\n${SMUGGLED}\r\n0\r\n\r\n`) },
  { name: 'Transfer-Encoding: gzip, chunked with a request pipelined after the body', status: 501, bytes: post('Transfer-Encoding: gzip, chunked\r\n', CHUNKED_HELLO + SMUGGLED) },
  { name: 'an invalid Host with a request pipelined after it', status: 400, bytes: `GET / HTTP/1.1\r\nHost: a b\r\n\r\n${SMUGGLED}` },
  { name: 'two Host headers with a request pipelined after it', status: 400, bytes: `GET / HTTP/1.1\r\n${HOST}Host: other.test\r\n\r\n${SMUGGLED}` },
  { name: 'HTTP/2.0 with a request pipelined after it', status: 505, bytes: `GET / HTTP/2.0\r\n${HOST}\r\n${SMUGGLED}` },
];

const contentLength: BadCase[] = [
  { name: 'two Content-Length headers with different values', status: 400, bytes: post('Content-Length: 5\r\nContent-Length: 6\r\n', 'hello!') },
  // nginx refuses identical duplicates too; llhttp does the same.
  { name: 'two identical Content-Length headers', status: 400, bytes: post('Content-Length: 5\r\nContent-Length: 5\r\n', 'hello') },
  { name: 'a Content-Length list "5, 5"', status: 400, bytes: post('Content-Length: 5, 5\r\n', 'hello') },
  { name: 'Content-Length: +5', status: 400, bytes: post('Content-Length: +5\r\n', 'hello') },
  { name: 'Content-Length: 5 5', status: 400, bytes: post('Content-Length: 5 5\r\n', 'hello') },
  { name: 'Content-Length: 0x5', status: 400, bytes: post('Content-Length: 0x5\r\n', 'hello') },
  { name: 'Content-Length: -5', status: 400, bytes: post('Content-Length: -5\r\n', 'hello') },
  { name: 'Content-Length: 5a', status: 400, bytes: post('Content-Length: 5a\r\n', 'hello') },
  { name: 'an empty Content-Length', status: 400, bytes: post('Content-Length: \r\n', 'hello') },
  { name: 'a Content-Length beyond 2^64', status: 400, bytes: post('Content-Length: 99999999999999999999999\r\n', 'hello') },
];

const transferEncoding: BadCase[] = [
  { name: 'Transfer-Encoding: gzip', status: 501, bytes: post('Transfer-Encoding: gzip\r\n', CHUNKED_HELLO) },
  // chunked not last: llhttp cannot frame it and refuses before the router sees it.
  { name: 'Transfer-Encoding: chunked, gzip', status: 400, bytes: post('Transfer-Encoding: chunked, gzip\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding: gzip, chunked', status: 501, bytes: post('Transfer-Encoding: gzip, chunked\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding: identity', status: 501, bytes: post('Transfer-Encoding: identity\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding: xchunked', status: 501, bytes: post('Transfer-Encoding: xchunked\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding: ch unked', status: 501, bytes: post('Transfer-Encoding: ch unked\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding: , chunked', status: 501, bytes: post('Transfer-Encoding: , chunked\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding: chunked, (empty last coding)', status: 400, bytes: post('Transfer-Encoding: chunked,\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding: chunked, chunked', status: 400, bytes: post('Transfer-Encoding: chunked, chunked\r\n', CHUNKED_HELLO) },
  { name: 'two Transfer-Encoding: chunked headers', status: 400, bytes: post('Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding: chunked followed by a vertical tab', status: 400, bytes: post('Transfer-Encoding: chunked\x0b\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding: a vertical tab then chunked', status: 400, bytes: post('Transfer-Encoding: \x0bchunked\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding: a form feed then chunked', status: 400, bytes: post('Transfer-Encoding:\x0cchunked\r\n', CHUNKED_HELLO) },
  { name: 'Transfer-Encoding folded onto a continuation line (obs-fold)', status: 400, bytes: post('Transfer-Encoding: gzip\r\n chunked\r\n', CHUNKED_HELLO) },
  { name: 'an empty Transfer-Encoding with chunked on a continuation line', status: 400, bytes: post('Transfer-Encoding:\r\n chunked\r\n', CHUNKED_HELLO) },
  // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
  { name: 'Transfer-Encoding: chunked in an HTTP/1.0 request', status: 400, bytes: `POST / HTTP/1.0\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n${CHUNKED_HELLO}` },
];

const chunks: BadCase[] = [
  badChunks('a non-hex chunk size', 'zz\r\nhello\r\n0\r\n\r\n'),
  badChunks('a chunk size overflowing 64 bits', 'ffffffffffffffffff\r\nhello\r\n0\r\n\r\n'),
  badChunks('a negative chunk size', '-5\r\nhello\r\n0\r\n\r\n'),
  badChunks('a 0x-prefixed chunk size', '0x5\r\nhello\r\n0\r\n\r\n'),
  badChunks('a chunk size with trailing whitespace', '5 \r\nhello\r\n0\r\n\r\n'),
  badChunks('chunk data without its CRLF', '5\r\nhello0\r\n\r\n'),
  badChunks('a chunk size without its CRLF', '5hello\r\n0\r\n\r\n'),
  badChunks('chunk lines ended by bare LF', '5\nhello\n0\n\n'),
  badChunks('a chunk extension with \\x01', '5;a=b\x01c\r\nhello\r\n0\r\n\r\n'),
  badChunks('a chunk extension with NUL', '5;\x00\r\nhello\r\n0\r\n\r\n'),
  badChunks('a quoted chunk extension with DEL', '5;a="\x7f"\r\nhello\r\n0\r\n\r\n'),
  badChunks('a chunk extension with a bare CR', '5;a\rb\r\nhello\r\n0\r\n\r\n'),
  badChunks('a trailer field with \\x01', '5\r\nhello\r\n0\r\nX: a\x01b\r\n\r\n'),
];

const lines: BadCase[] = [
  { name: 'a request line ended by bare LF', status: 400, bytes: `GET / HTTP/1.1\n${HOST}\r\n` },
  { name: 'a header line ended by bare LF', status: 400, bytes: getWith('X-A: b\nX-C: d\r\n') },
  { name: 'a head with bare LF everywhere', status: 400, bytes: 'GET / HTTP/1.1\nHost: app.test\n\n' },
  { name: 'a head ended by bare LF', status: 400, bytes: `GET / HTTP/1.1\r\n${HOST}\n` },
  { name: 'a request line ended by bare CR', status: 400, bytes: `GET / HTTP/1.1\r${HOST}\r\n` },
  { name: 'a bare CR inside a header value', status: 400, bytes: getWith('X-A: b\rX-C: d\r\n') },
  { name: 'a folded header (obs-fold)', status: 400, bytes: getWith('X-Folded: a\r\n\tb\r\n') },
];

const fields: BadCase[] = [
  { name: 'NUL in a header name', status: 400, bytes: getWith('X-A\x00B: c\r\n') },
  { name: 'NUL in a header value', status: 400, bytes: getWith('X-A: b\x00c\r\n') },
  { name: '\\x01 in a header name', status: 400, bytes: getWith('X-A\x01B: c\r\n') },
  { name: '\\x01 in a header value', status: 400, bytes: getWith('X-A: b\x01c\r\n') },
  { name: 'DEL in a header name', status: 400, bytes: getWith('X-A\x7fB: c\r\n') },
  { name: 'DEL in a header value', status: 400, bytes: getWith('X-A: b\x7fc\r\n') },
  { name: 'a space before the colon (Host : app.test)', status: 400, bytes: 'GET / HTTP/1.1\r\nHost : app.test\r\n\r\n' },
  { name: 'a space before the colon of another header', status: 400, bytes: getWith('X-A : b\r\n') },
  { name: 'a tab before the colon', status: 400, bytes: getWith('X-A\t: b\r\n') },
  { name: 'a space inside a header name', status: 400, bytes: getWith('X A: b\r\n') },
  { name: 'an empty header name', status: 400, bytes: getWith(': b\r\n') },
  { name: 'a header line without a colon', status: 400, bytes: getWith('X-A b\r\n') },
  { name: 'whitespace before the first header line', status: 400, bytes: 'GET / HTTP/1.1\r\n Host: app.test\r\n\r\n' },
];

const hosts: BadCase[] = [
  { name: 'an HTTP/1.1 request without Host', status: 400, bytes: 'GET / HTTP/1.1\r\n\r\n' },
  { name: 'two identical Host headers', status: 400, bytes: `GET / HTTP/1.1\r\n${HOST}${HOST}\r\n` },
  { name: 'two different Host headers', status: 400, bytes: `GET / HTTP/1.1\r\n${HOST}Host: other.test\r\n\r\n` },
  { name: 'Host: a b', status: 400, bytes: 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n' },
  { name: 'Host: app.test x', status: 400, bytes: 'GET / HTTP/1.1\r\nHost: app.test x\r\n\r\n' },
  { name: 'Host: app.test/evil', status: 400, bytes: 'GET / HTTP/1.1\r\nHost: app.test/evil\r\n\r\n' },
  { name: 'Host with userinfo (evil@app.test)', status: 400, bytes: 'GET / HTTP/1.1\r\nHost: evil@app.test\r\n\r\n' },
  { name: 'Host with a non-numeric port', status: 400, bytes: 'GET / HTTP/1.1\r\nHost: app.test:80x\r\n\r\n' },
  { name: 'Host with a comma list', status: 400, bytes: 'GET / HTTP/1.1\r\nHost: app.test, other.test\r\n\r\n' },
  // Empty is valid Host syntax (RFC 9110 §7.2), it just names no route; nginx answers 400 here.
  { name: 'an empty Host (no route)', status: 404, bytes: 'GET / HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n' },
];

const requestLines: BadCase[] = [
  { name: 'a method with @ (G@T)', status: 400, bytes: `G@T / HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'a lowercase method', status: 400, bytes: `get / HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'an unknown method (FOO)', status: 400, bytes: `FOO / HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'NUL in the method', status: 400, bytes: `GE\x00T / HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'HTTP/2.0 in the request line', status: 505, bytes: `GET / HTTP/2.0\r\n${HOST}\r\n` },
  { name: 'HTTP/1.2', status: 400, bytes: `GET / HTTP/1.2\r\n${HOST}\r\n` },
  { name: 'HTTP/1.10', status: 400, bytes: `GET / HTTP/1.10\r\n${HOST}\r\n` },
  { name: 'HTTP/x.y', status: 400, bytes: `GET / HTTP/x.y\r\n${HOST}\r\n` },
  { name: 'HTTPS/1.1', status: 400, bytes: `GET / HTTPS/1.1\r\n${HOST}\r\n` },
  { name: 'a lowercase http/1.1', status: 400, bytes: `GET / http/1.1\r\n${HOST}\r\n` },
  { name: 'HTTP/0.9 in the request line', status: 400, bytes: `GET / HTTP/0.9\r\n${HOST}\r\n` },
  { name: 'a request line without a version (HTTP/0.9 form)', status: 400, bytes: `GET /\r\n${HOST}\r\n` },
  { name: 'a request line without a version but with a trailing space', status: 400, bytes: `GET / \r\n${HOST}\r\n` },
  { name: 'a token after the version', status: 400, bytes: `GET / HTTP/1.1 x\r\n${HOST}\r\n` },
  { name: 'a space inside the target', status: 400, bytes: `GET /a b HTTP/1.1\r\n${HOST}\r\n` },
  { name: '\\x01 inside the target', status: 400, bytes: `GET /a\x01b HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'absolute-form with an ftp: scheme', status: 400, bytes: `GET ftp://app.test/ HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'absolute-form with a javascript: scheme', status: 400, bytes: `GET javascript:alert(1) HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'absolute-form with userinfo in the authority', status: 400, bytes: `GET http://evil@app.test/ HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'absolute-form with a non-numeric port', status: 400, bytes: `GET http://app.test:80x/ HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'absolute-form with a percent-encoded host', status: 400, bytes: `GET http://app%2etest/ HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'a target without a leading slash', status: 400, bytes: `GET app.test/ HTTP/1.1\r\n${HOST}\r\n` },
  { name: 'asterisk-form with GET', status: 400, bytes: `GET * HTTP/1.1\r\n${HOST}\r\n` },
];

const oversized: BadCase[] = [
  { name: 'one header over 16 KiB', status: 431, bytes: getWith(`X-Big: ${'a'.repeat(17 * 1024)}\r\n`) },
  { name: '300 headers totalling over 16 KiB', status: 431, bytes: getWith(Array.from({ length: 300 }, (_, i) => `X-H${i}: ${'v'.repeat(60)}\r\n`).join('')) },
  // nginx answers 414 here; ours counts the request line in the head limit.
  { name: 'a request line over 16 KiB', status: 431, bytes: `GET /${'a'.repeat(17 * 1024)} HTTP/1.1\r\n${HOST}\r\n` },
];

/** Status codes of every response in a raw reply. */
export function statuses(text: string): number[] {
  return [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

/** Every case, by group (the single-router battery names its tests after them). */
export const badRequestGroups: readonly (readonly [string, readonly BadCase[]])[] = [
  ['request smuggling', smuggling],
  ['Content-Length', contentLength],
  ['Transfer-Encoding', transferEncoding],
  ['chunked bodies', chunks],
  ['line endings', lines],
  ['header fields', fields],
  ['Host', hosts],
  ['request line', requestLines],
  ['oversized heads', oversized],
];
