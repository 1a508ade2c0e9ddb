// Inputs for the request fuzzer: a valid request built from parts, then bent by
// a few mutations drawn from the shapes that desynchronise parsers (request
// smuggling through Content-Length/Transfer-Encoding and header lists, chunk
// sizes, extensions and trailers, whitespace, case, line endings, obs-fold,
// control bytes, absolute-form targets), then maybe a byte-level mutation and
// a second request pipelined behind it. Every request names `app.test`,
// routed to the capturing backend.
import type { Random } from './fuzz-run.ts';

export const FUZZ_HOST = 'app.test';
/** What a smuggled request looks like at the backend: a path no generated request uses otherwise. */
export const SMUGGLED_PATH = '/smuggled';
const SMUGGLED = `GET ${SMUGGLED_PATH} HTTP/1.1\r\nHost: ${FUZZ_HOST}\r\n\r\n`;

interface Shape {
  method: string;
  target: string;
  version: string;
  headers: [string, string][];
  /** The body as it goes on the wire (already chunked when chunked). */
  body: string;
  /** Separator of the request line and the fields (CRLF unless mutated). */
  eol: string;
  /** Separator between a field name and its value. */
  colon: string;
}

const METHODS = ['GET', 'GET', 'GET', 'POST', 'POST', 'PUT', 'HEAD', 'DELETE', 'OPTIONS', 'PATCH'];
const PATHS = [
  '/', '/a', '/a/b?c=d', '/x?y', '/a/./b', '/a/../b', '/a/%2e%2e/b', '/a/..%2fb', '/%7euser', '/a//b',
  '/.well-known/acme-challenge/../../login', '/a?b=../c', '/a%20b', '/a;p=1', '/%41',
];
const BODIES = ['hello', '', 'x'.repeat(100), SMUGGLED, `0\r\n\r\n${SMUGGLED}`, 'a=1&b=2', '\r\n\r\n', 'GET / HTTP/1.1\r\n'];

function chunk(rnd: Random, data: string): string {
  let size = data.length.toString(16);
  if (rnd.chance(0.2)) size = size.toUpperCase();
  if (rnd.chance(0.1)) size = '0'.repeat(1 + rnd.int(20)) + size;
  const ext = rnd.chance(0.15) ? rnd.pick([';a=b', ';a', '; a = b', ';a="q d"', ';a="\\""', ';a=b;c=d', `;${'e'.repeat(200)}`]) : '';
  return `${size}${ext}\r\n${data}\r\n`;
}

function chunkedBody(rnd: Random, data: string): string {
  let out = '';
  let rest = data;
  while (rest.length > 0) {
    const n = 1 + rnd.int(rest.length);
    out += chunk(rnd, rest.slice(0, n));
    rest = rest.slice(n);
  }
  const last = rnd.chance(0.1) ? '000' : '0';
  const trailers = rnd.chance(0.15) ? rnd.pick(['X-Trailer: t\r\n', 'X-A: 1\r\nX-B: 2\r\n', 'Content-Length: 5\r\n', 'Host: evil.example\r\n']) : '';
  return `${out}${last}\r\n${trailers}\r\n`;
}

function validShape(rnd: Random): Shape {
  const method = rnd.pick(METHODS);
  const headers: [string, string][] = [['Host', FUZZ_HOST]];
  if (rnd.chance(0.3)) headers.push(['User-Agent', 'fuzz']);
  if (rnd.chance(0.2)) headers.push(['Accept', '*/*']);
  if (rnd.chance(0.1)) headers.push(['Cookie', 'a=b; c=d']);
  if (rnd.chance(0.1)) headers.push(['Connection', 'keep-alive']);
  let body = '';
  if (method === 'POST' || method === 'PUT' || method === 'PATCH' || rnd.chance(0.05)) {
    const data = rnd.pick(BODIES);
    if (rnd.chance(0.4)) {
      headers.push(['Transfer-Encoding', 'chunked']);
      body = chunkedBody(rnd, data);
    } else {
      headers.push(['Content-Length', String(data.length)]);
      body = data;
    }
  }
  if (rnd.chance(0.05)) headers.push(['Expect', '100-continue']);
  // Shuffle, so Host and the framing fields are not always in the same place.
  for (let i = headers.length - 1; i > 0; i--) {
    const j = rnd.int(i + 1);
    [headers[i], headers[j]] = [headers[j], headers[i]];
  }
  return { method, target: rnd.pick(PATHS), version: rnd.chance(0.05) ? 'HTTP/1.0' : 'HTTP/1.1', headers, body, eol: '\r\n', colon: ': ' };
}

const find = (s: Shape, name: string) => s.headers.findIndex(([n]) => n.toLowerCase() === name);
function setHeader(s: Shape, name: string, value: string): void {
  const i = find(s, name.toLowerCase());
  if (i >= 0) s.headers[i] = [s.headers[i][0], value];
  else s.headers.push([name, value]);
}
const someHeader = (rnd: Random, s: Shape) => (s.headers.length === 0 ? -1 : rnd.int(s.headers.length));

/** Structural mutations: each bends one part of the request. */
const MUTATIONS: ((rnd: Random, s: Shape) => void)[] = [
  // Header lists that name framing or Host (defect 1 of issue 10).
  (rnd, s) => s.headers.push(['Connection', rnd.pick(['content-length', 'transfer-encoding', 'host', 'close, content-length', 'keep-alive, Transfer-Encoding', 'Content-Length', 'x-a, host', 'upgrade'])]),
  // CL and TE together, in either order, with the body framed by one of them.
  (rnd, s) => {
    const data = rnd.pick(BODIES);
    const chunked = chunkedBody(rnd, data);
    s.headers = s.headers.filter(([n]) => !/^(content-length|transfer-encoding)$/i.test(n));
    const cl: [string, string] = ['Content-Length', String(rnd.pick([data.length, chunked.length, 0, 4]))];
    const te: [string, string] = ['Transfer-Encoding', 'chunked'];
    s.headers.push(...(rnd.chance(0.5) ? [cl, te] : [te, cl]));
    s.body = rnd.chance(0.5) ? chunked : data;
    if (s.method === 'GET' && rnd.chance(0.5)) s.method = 'POST';
  },
  // Transfer-Encoding variants.
  (rnd, s) => {
    const value = rnd.pick(['chunked, identity', 'identity, chunked', 'xchunked', 'chunked ', ' chunked', 'CHUNKED', 'Chunked', 'chunked;q=1', '\tchunked', 'chunked\x0b', 'gzip, chunked',
      'chunked, chunked', 'chunk', 'chunked\x00', '"chunked"', 'chunked,', ',chunked', 'identity', 'deflate']);
    if (find(s, 'transfer-encoding') < 0) {
      s.headers = s.headers.filter(([n]) => !/^content-length$/i.test(n));
      s.body = chunkedBody(rnd, rnd.pick(BODIES));
      if (s.method === 'GET') s.method = 'POST';
    }
    setHeader(s, 'Transfer-Encoding', value);
    if (rnd.chance(0.2)) s.headers.push(['Transfer-Encoding', rnd.pick(['chunked', 'identity'])]);
  },
  // Content-Length variants.
  (rnd, s) => {
    const n = s.body.length;
    const value = rnd.pick([`+${n}`, ` ${n}`, `0${n}`, `000${n}`, `${n} `, `${n}, ${n}`, `${n},${n + 1}`, `-${n}`, `${n}.0`, `0x${n.toString(16)}`, '99999999999999999999', '18446744073709551616',
      '9007199254740993', `${n}\x00`, `${n + 1}`, `${Math.max(0, n - 1)}`, '', `${n}${n}`, '1e1', `\t${n}`]);
    setHeader(s, 'Content-Length', value);
    if (rnd.chance(0.3)) s.headers.push(['Content-Length', rnd.pick([String(n), String(n + 1), '0'])]);
  },
  // Host: repeated, missing, odd.
  (rnd, s) => {
    const pick = rnd.int(6);
    if (pick === 0) s.headers.push(['Host', rnd.pick([FUZZ_HOST, 'other.test', 'evil.example'])]);
    else if (pick === 1) s.headers = s.headers.filter(([n]) => n.toLowerCase() !== 'host');
    else setHeader(s, 'Host', rnd.pick(['APP.TEST', `${FUZZ_HOST}:80`, `${FUZZ_HOST}.`, '', `${FUZZ_HOST}:`, 'evil.example', `${FUZZ_HOST} `, `${FUZZ_HOST}\t`, 'app.test@evil', '[::1]', `${FUZZ_HOST}:99999`]));
  },
  // Absolute-form targets (the authority replaces Host: defect 7).
  (rnd, s) => {
    const scheme = rnd.pick(['http', 'http', 'HTTP', 'https', 'ftp']);
    const authority = rnd.pick([FUZZ_HOST, `${FUZZ_HOST}:80`, 'APP.test', 'evil.example', '']);
    s.target = `${scheme}://${authority}${rnd.pick(['', '/', '/x', '?q', '/a/../b'])}`;
    if (rnd.chance(0.5)) setHeader(s, 'Host', rnd.pick([FUZZ_HOST, 'evil.example']));
  },
  // Whitespace around names, values and colons.
  (rnd, s) => {
    const i = someHeader(rnd, s);
    if (i < 0) return;
    const [name, value] = s.headers[i];
    const pick = rnd.int(6);
    if (pick === 0) s.headers[i] = [`${name} `, value];
    else if (pick === 1) s.headers[i] = [`${name}\t`, value];
    else if (pick === 2) s.headers[i] = [` ${name}`, value];
    else if (pick === 3) s.headers[i] = [name, `\t${value}\t`];
    else if (pick === 4) s.headers[i] = [name, `  ${value}  `];
    else s.colon = rnd.pick([':', ':\t', ' : ', ':  ']);
  },
  // Case.
  (rnd, s) => {
    const i = someHeader(rnd, s);
    const pick = rnd.int(4);
    if (pick === 0 && i >= 0) s.headers[i] = [s.headers[i][0].toUpperCase(), s.headers[i][1]];
    else if (pick === 1 && i >= 0) s.headers[i] = [s.headers[i][0].toLowerCase(), s.headers[i][1].toUpperCase()];
    else if (pick === 2) s.method = s.method.toLowerCase();
    else s.version = s.version.toLowerCase();
  },
  // Line endings.
  (rnd, s) => { s.eol = rnd.pick(['\n', '\r', '\r\r\n', '\n\r']); },
  // obs-fold.
  (rnd, s) => {
    const i = someHeader(rnd, s);
    if (i >= 0) s.headers[i] = [s.headers[i][0], `${s.headers[i][1]}\r\n${rnd.pick([' ', '\t'])}folded`];
  },
  // NUL and control bytes in a name, a value, the target or the method.
  (rnd, s) => {
    const c = rnd.pick(['\x00', '\x01', '\x08', '\x0b', '\x0c', '\x1f', '\x7f', '\x80', '\xff', '\r', '\n']);
    const i = someHeader(rnd, s);
    const pick = rnd.int(4);
    const insert = (t: string) => { const at = rnd.int(t.length + 1); return t.slice(0, at) + c + t.slice(at); };
    if (pick === 0 && i >= 0) s.headers[i] = [insert(s.headers[i][0]), s.headers[i][1]];
    else if (pick === 1 && i >= 0) s.headers[i] = [s.headers[i][0], insert(s.headers[i][1])];
    else if (pick === 2) s.target = insert(s.target);
    else s.method = insert(s.method);
  },
  // The request line itself.
  (rnd, s) => {
    const pick = rnd.int(6);
    if (pick === 0) s.version = rnd.pick(['HTTP/1.2', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.01', 'HTTP/1', 'HTTP/11', '', 'HTTP/1.1 ', 'HTTP/1.1\t']);
    else if (pick === 1) s.method = rnd.pick(['CONNECT', 'TRACE', 'PURGE', 'FOO', 'GET ', 'G ET', 'PROPFIND', 'QUERY']);
    else if (pick === 2) s.target = rnd.pick(['*', '', 'x', '/a b', '/a#frag', `/${'a'.repeat(8000)}`, '//', '/?', '/a\tb']);
    else if (pick === 3) s.target = ` ${s.target}`;
    else if (pick === 4) s.method = `${s.method}\t`;
    else s.target = `${s.target} `;
  },
  // Chunked body edge cases: sizes, extensions, trailers, mismatches.
  (rnd, s) => {
    s.headers = s.headers.filter(([n]) => !/^(content-length|transfer-encoding)$/i.test(n));
    s.headers.push(['Transfer-Encoding', 'chunked']);
    if (s.method === 'GET' || s.method === 'HEAD') s.method = 'POST';
    s.body = rnd.pick([
      `${'0'.repeat(30)}5\r\nhello\r\n0\r\n\r\n`, 'ffffffffffffffffff\r\nhello\r\n0\r\n\r\n', '10000000000000000\r\nhello\r\n0\r\n\r\n', '5\r\nhelloX\r\n0\r\n\r\n',
      '5\r\nhel\r\n0\r\n\r\n', '5 \r\nhello\r\n0\r\n\r\n', ' 5\r\nhello\r\n0\r\n\r\n', '5\nhello\n0\n\n', '5;\r\nhello\r\n0\r\n\r\n', '5;a=\x01\r\nhello\r\n0\r\n\r\n',
      '5\r\nhello\r\n0\r\nX: \x00\r\n\r\n', '5\r\nhello\r\n0\r\n X: y\r\n\r\n', '5\r\nhello\r\n0\r\nX : y\r\n\r\n', '5\r\nhello\r\n0\r\n', '5\r\nhello\r\n0\r\n\r\n\r\n',
      '-1\r\nhello\r\n0\r\n\r\n', '0x5\r\nhello\r\n0\r\n\r\n', '5\r\nhello\r\n', `5\r\nhello\r\n0\r\n\r\n${SMUGGLED}`, '5\r\nhello\r0\r\n\r\n', 'g\r\nhello\r\n0\r\n\r\n',
      '5;a="b\r\nhello\r\n0\r\n\r\n', '5;a=b c\r\nhello\r\n0\r\n\r\n', '0;a=b\r\n\r\n', '0\r\nTrailer-Only: 1\r\n\r\n',
    ]);
  },
  // A body that does not match its Content-Length.
  (rnd, s) => {
    if (find(s, 'transfer-encoding') >= 0) return;
    s.body = rnd.pick([SMUGGLED, 'hello', '']);
    if (s.method === 'GET') s.method = 'POST';
    setHeader(s, 'Content-Length', String(Math.max(0, s.body.length + rnd.pick([-3, -1, 1, 5]))));
  },
  // Many headers, long values.
  (rnd, s) => {
    const n = rnd.pick([50, 100, 300]);
    for (let i = 0; i < n; i++) s.headers.push([`X-H${i}`, 'v'.repeat(rnd.pick([1, 10, 60]))]);
  },
  // Empty lines before the request (RFC 9112 §2.2 lets a server skip them).
  (rnd, s) => { s.method = `${rnd.pick(['\r\n', '\r\n\r\n', '\n'])}${s.method}`; },
  // A duplicated arbitrary header.
  (rnd, s) => {
    const i = someHeader(rnd, s);
    if (i >= 0) s.headers.push([...s.headers[i]] as [string, string]);
  },
  // Hop-by-hop and forwarding headers a client should not control.
  (rnd, s) => { s.headers.push(rnd.pick([['Keep-Alive', 'timeout=1'], ['Proxy-Connection', 'keep-alive'], ['TE', 'trailers'], ['Trailer', 'X-Trailer'], ['X-Forwarded-For', '1.2.3.4'], ['Forwarded', 'for=1.2.3.4'], ['X-Real-IP', '1.2.3.4'], ['X-Forwarded-Host', 'evil.example']] as [string, string][])); },
];

function serialise(s: Shape): string {
  let out = `${s.method} ${s.target}${s.version === '' ? '' : ` ${s.version}`}${s.eol}`;
  for (const [name, value] of s.headers) out += `${name}${s.colon}${value}${s.eol}`;
  return `${out}${s.eol}${s.body}`;
}

const INTERESTING_BYTES = ['\x00', '\x01', '\t', '\n', '\x0b', '\x0c', '\r', ' ', '\x7f', '\x80', '\xff', ':', ',', ';', '"', '0', 'f', '\r\n'];

/** One byte-level mutation anywhere in `text`. */
function mutateBytes(rnd: Random, text: string): string {
  if (text.length === 0) return text;
  const at = rnd.int(text.length);
  switch (rnd.int(4)) {
    case 0: return text.slice(0, at) + rnd.pick(INTERESTING_BYTES) + text.slice(at);
    case 1: return text.slice(0, at) + text.slice(at + 1 + rnd.int(3));
    case 2: {
      const len = 1 + rnd.int(Math.min(16, text.length - at));
      return text.slice(0, at + len) + text.slice(at, at + len) + text.slice(at + len);
    }
    default: {
      const c = text[at];
      const swapped = c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase();
      return text.slice(0, at) + swapped + text.slice(at + 1);
    }
  }
}

/** One request, valid or bent. */
export function generateRequest(rnd: Random): string {
  const s = validShape(rnd);
  const mutations = rnd.chance(0.15) ? 0 : 1 + rnd.int(rnd.chance(0.7) ? 1 : 3);
  for (let i = 0; i < mutations; i++) rnd.pick(MUTATIONS)(rnd, s);
  let text = serialise(s);
  if (rnd.chance(0.15)) text = mutateBytes(rnd, text);
  return text;
}

/** One client connection's bytes: a request, maybe with one or two more pipelined behind it. */
export function generateConnectionInput(rnd: Random): string {
  let text = generateRequest(rnd);
  if (rnd.chance(0.35)) text += rnd.chance(0.5) ? serialise(validShape(rnd)) : generateRequest(rnd);
  if (rnd.chance(0.05)) text += serialise(validShape(rnd));
  return text;
}
