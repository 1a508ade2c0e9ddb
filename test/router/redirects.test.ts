// Per-route redirects and headers from the route's etcd rule: HTTP→HTTPS with
// 308 (`httpsRedirect`) and Strict-Transport-Security on HTTPS (`hsts`).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { request as httpsRequest } from 'node:https';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get, rawExchange, type Reply } from '../helpers/http.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';
import { parseRouteRule } from '../../router/etcd/route-keys.ts';

const run = promisify(execFile);

describe('redirects and HSTS per route', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let certs: TestCertificates;
  let ca: Buffer;
  let app: TestBackend;
  let acme: TestBackend;

  function secureGet(host: string, path = '/'): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest({ host: '127.0.0.1', port: router.httpsPort, servername: host, path, headers: { host }, ca, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      });
      req.on('error', reject);
      req.end();
    });
  }

  before(async () => {
    certs = await TestCertificates.create();
    const cert = await certs.issue('example.com', ['secure.example.com', 'plain.example.com', 'empty.example.com']);
    ca = await readFile(certs.caFile);
    etcd = await EtcdServer.start();
    app = await startBackend('app', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'strict-transport-security': 'max-age=5' });
      res.end('app\n');
    });
    acme = await startBackend('acme');
    await etcd.put('/services/app/@1', app.address);
    await etcd.put('/services/acme/@1', acme.address);
    await etcd.put('/services/empty/@1', app.address);
    await etcd.put('/routes/secure', JSON.stringify({ hosts: ['secure.example.com'], service: 'app', httpsRedirect: true, hsts: { maxAge: 31536000, includeSubDomains: true } }));
    await etcd.put('/routes/secure-acme', JSON.stringify({ hosts: ['secure.example.com'], paths: ['/.well-known/acme-challenge/'], service: 'acme' }));
    await etcd.put('/routes/plain', JSON.stringify({ hosts: ['plain.example.com'], service: 'app' }));
    await etcd.put('/routes/empty', JSON.stringify({ hosts: ['empty.example.com'], service: 'empty', hsts: { maxAge: 600 } }));
    await etcd.put('/tls/site', cert.etcdValue);
    router = await startRouter({ etcd: etcd.endpoint, https: true });
  });

  after(async () => {
    await router?.stop();
    await Promise.all([app?.close(), acme?.close()]);
    await etcd?.close();
    await certs?.close();
  });

  it('answers HTTP with 308 to the same URL on HTTPS, without reaching a backend', async () => {
    const before = app.requests.length;
    const reply = await get(router.httpPort, 'Secure.Example.com', '/a/b?x=1&y=2');
    assert.equal(reply.status, 308);
    assert.equal(reply.headers.location, `https://secure.example.com:${router.httpsPort}/a/b?x=1&y=2`);
    assert.ok(reply.headers['x-request-id']);
    const post = await get(router.httpPort, 'secure.example.com', '/form', { method: 'POST', body: 'field=1', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
    assert.equal(post.status, 308, '308 keeps the method and body, so POST is redirected too');
    assert.equal(app.requests.length, before);
    const upgrade = await rawExchange(router.httpPort, 'GET /live HTTP/1.1\r\nHost: secure.example.com\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n');
    assert.match(upgrade.text, /^HTTP\/1\.1 308 /, 'a WebSocket upgrade over HTTP is redirected too');
    assert.match(upgrade.text, new RegExp(`\r\nLocation: https://secure\\.example\\.com:${router.httpsPort}/live\r\n`));
  });

  it('serves the same route over HTTPS, and a longer prefix without the redirect over HTTP', async () => {
    assert.equal((await secureGet('secure.example.com', '/a')).body, 'app\n');
    const challenge = await get(router.httpPort, 'secure.example.com', '/.well-known/acme-challenge/token');
    assert.equal(challenge.status, 200);
    assert.equal(challenge.body, 'acme\n');
  });

  it('is followed by Debian curl -L from HTTP to HTTPS', async () => {
    const { stdout } = await run('curl', [
      '-sS', '-L', '--max-time', '10', '--cacert', certs.caFile,
      '--resolve', `secure.example.com:${router.httpPort}:127.0.0.1`, '--resolve', `secure.example.com:${router.httpsPort}:127.0.0.1`,
      '-w', '\n%{http_code} %{num_redirects} %{url_effective}',
      `http://secure.example.com:${router.httpPort}/followed`,
    ]);
    assert.equal(stdout, `app\n\n200 1 https://secure.example.com:${router.httpsPort}/followed`);
  });

  it('sets Strict-Transport-Security on HTTPS responses only, replacing the backend\'s', async () => {
    const secure = await secureGet('secure.example.com');
    assert.equal(secure.headers['strict-transport-security'], 'max-age=31536000; includeSubDomains');
    const plain = await secureGet('plain.example.com');
    assert.equal(plain.headers['strict-transport-security'], 'max-age=5', 'a route without hsts passes the backend\'s through');
    const overHttp = await get(router.httpPort, 'plain.example.com');
    assert.equal(overHttp.status, 200);
    assert.equal(overHttp.headers['strict-transport-security'], 'max-age=5');
    await etcd.del('/services/empty/@1');
    await waitFor(async () => (await secureGet('empty.example.com')).status === 503, { what: 'empty 503' });
    assert.equal((await secureGet('empty.example.com')).headers['strict-transport-security'], 'max-age=600', 'error answers carry it too');
    assert.equal((await get(router.httpPort, 'empty.example.com')).headers['strict-transport-security'], undefined);
  });

  it('takes rule changes live and refuses invalid fields, keeping the previous rule', async () => {
    await etcd.put('/routes/plain', JSON.stringify({ hosts: ['plain.example.com'], service: 'app', httpsRedirect: true }));
    await waitFor(async () => (await get(router.httpPort, 'plain.example.com')).status === 308, { what: 'plain redirects' });
    await etcd.put('/routes/plain', JSON.stringify({ hosts: ['plain.example.com'], service: 'app', httpsRedirect: 'yes' }));
    await waitFor(() => router.logs().some((l) => l.key === '/routes/plain' && l.level === 'warn'), { what: 'warning for /routes/plain' });
    assert.equal((await get(router.httpPort, 'plain.example.com')).status, 308);
    for (const bad of [{ httpsRedirect: 1 }, { hsts: { maxAge: -1 } }, { hsts: { maxAge: 10, preload: true } }, { hsts: { maxAge: 10, subdomains: true } }, { hsts: 'on' }]) {
      assert.equal(typeof parseRouteRule(JSON.stringify({ service: 'a', ...bad })), 'string', JSON.stringify(bad));
    }
    const good = parseRouteRule(JSON.stringify({ service: 'a', hsts: { maxAge: 63072000, includeSubDomains: true, preload: true } }));
    assert.equal(typeof good, 'object');
  });
});
