// Per-route middlewares through the real router, over HTTP/1.1 and HTTP/2 (and
// a WebSocket upgrade where it applies): the path and headers the backend sees,
// allow/deny by IPv4 and IPv6 peer, basic auth with equal cost for unknown
// users, the rate limit and its cluster share, CORS preflights, and the body
// limit on declared and streamed bodies. Compression has its own file.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get, type Reply } from '../helpers/http.ts';
import { h2request } from '../helpers/http2-client.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';

const ALICE = bcrypt.hashSync('alice-pw', 8);
const BOB = bcrypt.hashSync('bob-pw', 8);

function basic(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

describe('route middlewares', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let router6: RouterProcess;
  let certs: TestCertificates;
  let echo: TestBackend;
  let session: ClientHttp2Session;

  const h1 = (host: string, path = '/', options: Parameters<typeof get>[3] = {}): Promise<Reply> => get(router.httpPort, host, path, options);
  const h2 = (host: string, path = '/', headers: Record<string, string> = {}, body?: Buffer | string) => h2request(session, path, { ':authority': host, ...headers }, body);
  const seenBy = (reply: { body: Buffer | string }) => JSON.parse(reply.body.toString()) as { url: string; headers: Record<string, string>; bytes: number };

  before(async () => {
    certs = await TestCertificates.create();
    const cert = await certs.issue('mw.test', ['mw.test']);
    etcd = await EtcdServer.start();
    echo = await startBackend('echo', (req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => { bytes += c.length; });
      req.on('end', () => {
        const body = JSON.stringify({ url: req.url, headers: req.headers, bytes });
        res.writeHead(200, { 'content-type': 'application/json', 'x-powered-by': 'echo', 'x-kept': 'yes', 'access-control-allow-origin': 'https://wrong.example' });
        res.end(body);
      });
    });
    await etcd.put('/services/echo/@1', echo.address);
    const routes: Record<string, object> = {
      rewrite: { hosts: ['rewrite.test'], paths: ['/api'], service: 'echo', stripPrefix: '/api', addPrefix: '/v2', requestHeaders: { set: { 'X-Env': 'prod' }, remove: ['x-secret'] }, responseHeaders: { set: { 'x-frame-options': 'DENY' }, remove: ['X-Powered-By'] } },
      v4allow: { hosts: ['v4allow.test'], service: 'echo', allow: ['127.0.0.0/8'] },
      v4deny: { hosts: ['v4deny.test'], service: 'echo', deny: ['127.0.0.1/32'], allow: ['0.0.0.0/0', '::/0'] },
      v6allow: { hosts: ['v6allow.test'], service: 'echo', allow: ['::1/128'] },
      v6deny: { hosts: ['v6deny.test'], service: 'echo', deny: ['::1'] },
      auth: { hosts: ['auth.test'], service: 'echo', basicAuth: { users: `alice:${ALICE}\nbob:${BOB}\n`, realm: 'staff' } },
      limit: { hosts: ['limit.test'], service: 'echo', rateLimit: { average: 2, burst: 10, per: 'client-ip' } },
      cors: { hosts: ['cors.test'], service: 'echo', cors: { origins: ['https://app.example'], methods: ['GET', 'PUT'], headers: ['content-type', 'x-token'], credentials: true, maxAge: 600 } },
      body: { hosts: ['body.test'], service: 'echo', maxBodySize: '1KiB' },
    };
    for (const [name, rule] of Object.entries(routes)) await etcd.put(`/routes/${name}`, JSON.stringify(rule));
    await etcd.put('/tls/mw', cert.etcdValue);
    router = await startRouter({ etcd: etcd.endpoint, https: true, args: ['--node-name', 'mw-v4'] });
    router6 = await startRouter({ etcd: etcd.endpoint, host: '[::1]', args: ['--node-name', 'mw-v6'] });
    session = h2connect(`https://127.0.0.1:${router.httpsPort}`, { ca: await readFile(certs.caFile), servername: 'mw.test' });
    await waitFor(async () => (await h2('rewrite.test', '/api')).status === 200, { what: 'rewrite route over h2' });
  });

  after(async () => {
    session?.close();
    await Promise.all([router?.stop(), router6?.stop()]);
    await echo?.close();
    await etcd?.close();
    await certs?.close();
  });

  it('refuses unknown and invalid middleware values, naming the key', async () => {
    const { parseRouteRule } = await import('../../router/etcd/route-keys.ts');
    const bad: [object, RegExp][] = [
      [{ stripPrefix: 'api' }, /stripPrefix/],
      [{ requestHeaders: { set: { 'transfer-encoding': 'gzip' } } }, /requestHeaders\.set.*transfer-encoding/],
      [{ responseHeaders: { remove: ['Connection'] } }, /responseHeaders\.remove.*Connection/],
      [{ requestHeaders: { set: { host: 'x' } } }, /host/],
      [{ requestHeaders: { set: { 'x-a': 'bad\r\nvalue' } } }, /requestHeaders\.set\.x-a/],
      [{ allow: ['10.0.0.0/33'] }, /"allow"/],
      [{ deny: ['not-an-ip'] }, /"deny"/],
      [{ basicAuth: { users: 'alice:plaintext' } }, /basicAuth\.users.*line 1/],
      [{ rateLimit: { average: 0 } }, /rateLimit\.average/],
      [{ rateLimit: { average: 1, per: 'user' } }, /rateLimit\.per/],
      [{ compress: ['not a type'] }, /compress/],
      [{ cors: { origins: ['*', 'https://a.example'] } }, /cors\.origins/],
      [{ maxBodySize: '10 parsecs' }, /maxBodySize/],
      [{ rateLimits: {} }, /unknown field "rateLimits"/],
    ];
    for (const [fields, reason] of bad) {
      const parsed = parseRouteRule(JSON.stringify({ service: 'echo', ...fields }));
      assert.equal(typeof parsed, 'string', JSON.stringify(fields));
      assert.match(parsed as string, reason);
    }
    const plain = parseRouteRule(JSON.stringify({ service: 'echo' }));
    assert.equal(typeof plain === 'object' && plain.middlewares, null, 'a rule without middleware fields has none');
  });

  it('shows the backend the rewritten path and request headers, and the client the edited response headers (HTTP/1.1 and HTTP/2)', async () => {
    const one = await h1('rewrite.test', '/api/items?page=2', { headers: { 'x-secret': 'hide-me', 'x-env': 'dev' } });
    const two = await h2('rewrite.test', '/api/items?page=2', { 'x-secret': 'hide-me', 'x-env': 'dev' });
    for (const [reply, headers] of [[one, one.headers], [two, two.headers]] as const) {
      assert.equal(reply.status, 200);
      const seen = seenBy(reply);
      assert.equal(seen.url, '/v2/items?page=2');
      assert.equal(seen.headers['x-env'], 'prod', 'set replaces the client\'s value');
      assert.equal(seen.headers['x-secret'], undefined);
      assert.equal(seen.headers.host, 'rewrite.test', 'the router\'s own fields are untouched');
      assert.equal(headers['x-frame-options'], 'DENY');
      assert.equal(headers['x-powered-by'], undefined);
      assert.equal(headers['x-kept'], 'yes');
    }
    assert.equal(seenBy(await h1('rewrite.test', '/api')).url, '/v2/');
    assert.equal(seenBy(await h2('rewrite.test', '/api?x=1')).url, '/v2/?x=1');
  });

  it('rewrites the path of a WebSocket upgrade and refuses one that basic auth does not admit', async () => {
    const upgrade = (host: string, path: string, extra = ''): Promise<string> => new Promise((resolve, reject) => {
      const socket = netConnect(router.httpPort, '127.0.0.1');
      let text = '';
      socket.on('data', (c: Buffer) => { text += c.toString(); });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.setTimeout(5000, () => socket.destroy());
      socket.write(`GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n${extra}\r\n`);
    });
    const before = echo.requests.length;
    // The echo backend does not upgrade: it answers the upgrade request as a plain one, which the router relays.
    const relayed = await upgrade('rewrite.test', '/api/socket');
    assert.match(relayed, /^HTTP\/1\.1 200/);
    assert.equal(echo.requests.at(-1)?.url, '/v2/socket');
    const refused = await upgrade('auth.test', '/');
    assert.match(refused, /^HTTP\/1\.1 401/);
    assert.match(refused, /WWW-Authenticate: Basic realm="staff"/i);
    assert.equal(echo.requests.length, before + 1, 'the refused upgrade never reached the backend');
  });

  it('admits and refuses by IPv4 and IPv6 peer address', async () => {
    assert.equal((await h1('v4allow.test')).status, 200);
    assert.equal((await h2('v4allow.test')).status, 200);
    assert.equal((await h1('v4deny.test')).status, 403);
    assert.equal((await h2('v4deny.test')).status, 403);
    assert.equal((await h1('v6allow.test')).status, 403, 'an IPv4 client is not in ::1/128');
    assert.equal((await h2('v6allow.test')).status, 403);
    assert.equal((await h1('v6deny.test')).status, 200);
    const v6 = (host: string) => get(router6.httpPort, host, '/', { address: '::1' });
    assert.equal((await v6('v6allow.test')).status, 200);
    assert.equal((await v6('v6deny.test')).status, 403);
    assert.equal((await v6('v4allow.test')).status, 403, '::1 is not in 127.0.0.0/8');
    assert.equal((await v6('v4deny.test')).status, 200, '::/0 admits ::1, which 127.0.0.1/32 does not deny');
  });

  it('asks for basic credentials and admits the right ones only (HTTP/1.1 and HTTP/2)', async () => {
    const none = await h1('auth.test');
    assert.equal(none.status, 401);
    assert.equal(none.headers['www-authenticate'], 'Basic realm="staff", charset="UTF-8"');
    assert.equal((await h2('auth.test')).status, 401);
    const before = echo.requests.length;
    assert.equal((await h1('auth.test', '/', { headers: { authorization: basic('alice', 'wrong') } })).status, 401);
    assert.equal((await h2('auth.test', '/', { authorization: basic('mallory', 'alice-pw') })).status, 401);
    assert.equal((await h1('auth.test', '/', { headers: { authorization: 'Bearer abc' } })).status, 401);
    assert.equal(echo.requests.length, before, 'no refused request reached the backend');
    assert.equal((await h1('auth.test', '/', { headers: { authorization: basic('alice', 'alice-pw') } })).status, 200);
    assert.equal((await h2('auth.test', '/', { authorization: basic('bob', 'bob-pw') })).status, 200);
    // Remembered: the same credentials again pass without another bcrypt check, on either protocol.
    assert.equal((await h2('auth.test', '/', { authorization: basic('alice', 'alice-pw') })).status, 200);
    const shown = (await router.routes()).routes.auth.middlewares.basicAuth;
    assert.deepEqual(shown, { users: ['alice', 'bob'], realm: 'staff' }, 'the admin /routes shows user names, never hashes');
  });

  it('never shows an inline password hash on the admin listener: /routes, the dashboard\'s data and its cluster view', async () => {
    for (const path of ['/routes', '/dashboard.json', '/cluster.json']) {
      const res = await fetch(`http://127.0.0.1:${router.adminPort}${path}`);
      assert.equal(res.status, 200, path);
      const text = await res.text();
      assert.match(text, /alice/, `${path} shows the route's users`);
      assert.doesNotMatch(text, /\$2[aby]\$/, `${path} shows no bcrypt hash`);
    }
  });

  it('costs the same for an unknown user as for a wrong password (medians within noise)', async () => {
    const timed = async (authorization: string): Promise<number> => {
      const started = performance.now();
      const reply = await h1('auth.test', '/', { headers: { authorization } });
      assert.equal(reply.status, 401);
      return performance.now() - started;
    };
    const wrong: number[] = [];
    const unknown: number[] = [];
    for (let i = 0; i < 9; i++) {
      // Interleaved, so that load on the machine hits both alike; fresh passwords are never remembered.
      wrong.push(await timed(basic('alice', `wrong-${i}`)));
      unknown.push(await timed(basic(`nobody-${i}`, `wrong-${i}`)));
    }
    const [w, u] = [median(wrong), median(unknown)];
    // A bcrypt check at cost 8 takes milliseconds; skipping it for unknown users would make their median a fraction of it.
    assert.ok(u > w * 0.5 && u < w * 2, `median wrong password ${w.toFixed(1)} ms, unknown user ${u.toFixed(1)} ms`);
  });

  it('answers 429 with Retry-After beyond the rate, and enforces a third of it once three routers are registered', async () => {
    const burst = async (n: number, send: () => Promise<{ status: number; headers: Record<string, unknown> }>) => {
      let admitted = 0;
      let retryAfter: unknown;
      for (let i = 0; i < n; i++) {
        const reply = await send();
        if (reply.status === 200) admitted++;
        else {
          assert.equal(reply.status, 429);
          retryAfter = reply.headers['retry-after'];
        }
      }
      return { admitted, retryAfter };
    };
    // Two live routers (this one and the IPv6 one): half of burst 10 at once, then about one a second.
    await waitFor(() => router.output.includes('"routers":2'), { timeout: 10_000, what: 'the router counts two routers' });
    await new Promise((resolve) => setTimeout(resolve, 5500)); // the bucket refills to its burst at this share
    const first = await burst(14, () => h1('limit.test'));
    assert.ok(first.admitted >= 5 && first.admitted <= 7, `half of burst 10: admitted ${first.admitted} of 14`);
    assert.ok(Number(first.retryAfter) >= 1, `Retry-After ${String(first.retryAfter)}`);
    const second = await burst(4, () => h2('limit.test'));
    assert.ok(second.admitted <= 2, `HTTP/2 shares the client's bucket: admitted ${second.admitted} of 4`);

    // Three live routers in etcd (this one, the IPv6 one and a record on no lease): the share is a third.
    await etcd.put('/routers/mw-other', JSON.stringify({ node: 'mw-other', revision: 1, healthy: true, updatedAt: new Date().toISOString(), addresses: {} }));
    try {
      await waitFor(() => router.output.includes('"routers":3'), { timeout: 10_000, what: 'the router counts three routers' });
      await new Promise((resolve) => setTimeout(resolve, 5500)); // the bucket refills to its new, smaller burst
      const shared = await burst(8, () => h1('limit.test'));
      assert.ok(shared.admitted >= 3 && shared.admitted <= 5, `a third of burst 10: admitted ${shared.admitted} of 8`);
    } finally {
      await etcd.del('/routers/mw-other');
    }
  });

  it('answers CORS preflights itself and adds the allowed origin to responses', async () => {
    const before = echo.requests.length;
    const preflight = { origin: 'https://app.example', 'access-control-request-method': 'PUT', 'access-control-request-headers': 'x-token' };
    const one = await h1('cors.test', '/things', { method: 'OPTIONS', headers: preflight });
    const two = await h2('cors.test', '/things', { ':method': 'OPTIONS', ...preflight });
    for (const [status, headers] of [[one.status, one.headers], [two.status, two.headers]] as const) {
      assert.equal(status, 204);
      assert.equal(headers['access-control-allow-origin'], 'https://app.example');
      assert.equal(headers['access-control-allow-methods'], 'GET, PUT');
      assert.equal(headers['access-control-allow-headers'], 'content-type, x-token');
      assert.equal(headers['access-control-allow-credentials'], 'true');
      assert.equal(headers['access-control-max-age'], '600');
      assert.equal(headers['content-length'], undefined, 'a 204 states no length');
    }
    assert.equal((await h1('cors.test', '/things', { method: 'OPTIONS', headers: { ...preflight, origin: 'https://evil.example' } })).status, 403);
    assert.equal(echo.requests.length, before, 'no preflight reached the backend');
    const actual = await h2('cors.test', '/things', { origin: 'https://app.example' });
    assert.equal(actual.status, 200);
    assert.equal(actual.headers['access-control-allow-origin'], 'https://app.example', 'the backend\'s own value is replaced');
    assert.equal(actual.headers['access-control-allow-credentials'], 'true');
    assert.match(String(actual.headers.vary), /Origin/);
    const other = await h1('cors.test', '/things', { headers: { origin: 'https://evil.example' } });
    assert.equal(other.headers['access-control-allow-origin'], 'https://wrong.example', 'no CORS fields for an origin not allowed: the backend\'s pass');
  });

  it('refuses a body above maxBodySize: declared (413 before the backend), chunked over HTTP/1.1 and streamed over HTTP/2', async () => {
    const small = await h1('body.test', '/', { method: 'POST', body: Buffer.alloc(1024, 1) });
    assert.equal(small.status, 200);
    assert.equal(seenBy(small).bytes, 1024);
    const before = echo.requests.length;
    assert.equal((await h1('body.test', '/', { method: 'POST', body: Buffer.alloc(1025, 1) })).status, 413);
    assert.equal((await h2('body.test', '/', { 'content-length': '4096' }, Buffer.alloc(4096, 1))).status, 413);
    assert.equal(echo.requests.length, before, 'a declared length above the limit never reaches the backend');

    const chunked = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: router.httpPort, method: 'POST', path: '/', headers: { host: 'body.test', 'transfer-encoding': 'chunked' }, agent: false }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      });
      req.on('error', reject);
      for (let i = 0; i < 8; i++) req.write(Buffer.alloc(512, 2));
      req.end();
    });
    assert.equal(chunked, 413);
    const streamed = await h2('body.test', '/', {}, Buffer.alloc(8192, 3));
    assert.equal(streamed.status, 413);
    const fits = await h2('body.test', '/', {}, Buffer.alloc(1000, 3));
    assert.equal(fits.status, 200);
    assert.equal(seenBy(fits).bytes, 1000);
  });
});
