// HTTP/2 to clients (ALPN h2 on the HTTPS listener), HTTP/1.1 keep-alive to
// upstreams: the same routing, header rules and failure statuses as HTTP/1.1.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session, type IncomingHttpHeaders } from 'node:http2';
import { readFile } from 'node:fs/promises';
import { connect as tlsConnect } from 'node:tls';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { h2request, type H2Reply } from '../helpers/http2-client.ts';
import { freePort } from '../helpers/ports.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { curl } from '../helpers/tls-client.ts';
import { waitFor } from '../helpers/wait.ts';

describe('HTTP/2 to clients', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let certs: TestCertificates;
  let ca: Buffer;
  let echo: TestBackend;
  let big: TestBackend;
  let session: ClientHttp2Session;
  const BIG = 8 * 1024 * 1024;

  const request = (path: string, headers: Record<string, string> = {}, body?: Buffer | string, s: ClientHttp2Session = session): Promise<H2Reply> => h2request(s, path, headers, body);


  before(async () => {
    certs = await TestCertificates.create();
    const cert = await certs.issue('h2.example.com', ['*.example.com', 'echo.test', 'big.test', 'gone.test', 'dead.test', 'nobody.test']);
    ca = await readFile(certs.caFile);
    etcd = await EtcdServer.start();
    echo = await startBackend('echo', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = JSON.stringify({ method: req.method, url: req.url, httpVersion: req.httpVersion, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString() });
        res.writeHead(200, { 'content-type': 'application/json', 'x-backend': 'echo', connection: 'keep-alive', 'keep-alive': 'timeout=5' });
        res.end(body);
      });
    });
    big = await startBackend('big', (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      let sent = 0;
      const chunk = Buffer.alloc(64 * 1024, 0x61);
      const pump = () => {
        while (sent < BIG) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await etcd.put('/services/echo/@1', echo.address);
    await etcd.put('/services/big/@1', big.address);
    await etcd.put('/services/dead/@1', `127.0.0.1:${await freePort()}`);
    await etcd.put('/routes/echo-www', JSON.stringify({ hosts: ['www.example.com'], service: 'echo' }));
    await etcd.put('/tls/h2', cert.etcdValue);
    router = await startRouter({ etcd: etcd.endpoint, https: true, args: ['--response-timeout', '500ms'] });
    session = connect(`https://127.0.0.1:${router.httpsPort}`, { ca, servername: 'echo.test' });
    await waitFor(async () => (await request('/', { ':authority': 'echo.test' })).status === 200, { what: 'echo routed over h2' });
  });

  after(async () => {
    session?.close();
    await router?.stop();
    await Promise.all([echo?.close(), big?.close()]);
    await etcd?.close();
    await certs?.close();
  });

  it('routes by :authority and path, and speaks HTTP/1.1 keep-alive to the backend', async () => {
    const reply = await request('/some/path?x=1', { ':authority': 'echo.test' });
    assert.equal(reply.status, 200);
    const seen = JSON.parse(reply.body.toString());
    assert.equal(seen.httpVersion, '1.1');
    assert.equal(seen.url, '/some/path?x=1');
    const other = await request('/', { ':authority': 'www.example.com' }, undefined);
    assert.equal(other.status, 200, 'another host on the same connection is routed by its own :authority');
    const before = echo.sockets.size;
    for (let i = 0; i < 10; i++) assert.equal((await request('/', { ':authority': 'echo.test' })).status, 200);
    assert.ok(echo.sockets.size <= Math.max(before, 1) + 1, `upstream connections reused (${echo.sockets.size})`);
  });

  it('forwards the same headers as HTTP/1.1: Host from :authority, X-Forwarded-*, no pseudo or hop-by-hop headers', async () => {
    const reply = await request('/', { ':authority': 'echo.test', 'x-forwarded-proto': 'http', 'x-forwarded-host': 'evil', 'x-forwarded-for': '10.9.8.7', te: 'trailers', 'x-custom': 'kept', 'x-request-id': 'h2-trace-1' });
    const seen = JSON.parse(reply.body.toString()) as { rawHeaders: string[] };
    const headers = new Map<string, string[]>();
    for (let i = 0; i < seen.rawHeaders.length; i += 2) headers.set(seen.rawHeaders[i].toLowerCase(), [...(headers.get(seen.rawHeaders[i].toLowerCase()) ?? []), seen.rawHeaders[i + 1]]);
    assert.deepEqual(headers.get('host'), ['echo.test']);
    assert.deepEqual(headers.get('x-forwarded-proto'), ['https']);
    assert.deepEqual(headers.get('x-forwarded-host'), ['echo.test']);
    assert.deepEqual(headers.get('x-forwarded-for'), ['10.9.8.7, 127.0.0.1']);
    assert.deepEqual(headers.get('x-custom'), ['kept']);
    assert.deepEqual(headers.get('x-request-id'), ['h2-trace-1']);
    assert.equal(headers.has('te'), false);
    assert.ok([...headers.keys()].every((name) => !name.startsWith(':')), 'no pseudo-header reaches the backend');
    // Response: the backend's Connection and Keep-Alive are not relayed (they are illegal in HTTP/2).
    assert.equal(reply.headers['x-backend'], 'echo');
    assert.equal(reply.headers['x-request-id'], 'h2-trace-1');
    assert.equal(reply.headers.connection, undefined);
    assert.equal(reply.headers['keep-alive'], undefined);
  });

  it('applies the request rules of every protocol: the normalised path, refused escapes, X-Real-IP, no client Forwarded', async () => {
    const reply = await request('/a/./b/../c/%7Euser?q=/../x', { ':authority': 'echo.test', forwarded: 'for=10.9.9.9', 'x-real-ip': '10.9.9.9' });
    const seen = JSON.parse(reply.body.toString()) as { url: string; rawHeaders: string[] };
    assert.equal(seen.url, '/a/c/~user?q=/../x');
    const names = seen.rawHeaders.filter((_, i) => i % 2 === 0).map((n) => n.toLowerCase());
    assert.equal(names.includes('forwarded'), false);
    assert.equal(seen.rawHeaders[seen.rawHeaders.findIndex((n, i) => i % 2 === 0 && n.toLowerCase() === 'x-real-ip') + 1], '127.0.0.1');
    for (const path of ['/x/..%2f..%2fadmin', '/x/%5C..', '/x/\\..']) {
      assert.equal((await request(path, { ':authority': 'echo.test' })).status, 400, path);
    }
  });

  it('streams request bodies without a length (chunked upstream) and large responses with backpressure', async () => {
    const payload = Buffer.alloc(300 * 1024, 0x62);
    const reply = await request('/upload', { ':authority': 'echo.test' }, payload);
    const seen = JSON.parse(reply.body.toString()) as { method: string; body: string };
    assert.equal(seen.method, 'POST');
    assert.equal(seen.body.length, payload.length);
    const download = await request('/', { ':authority': 'big.test' });
    assert.equal(download.status, 200);
    assert.equal(download.body.length, BIG);
  });

  it('answers 404 for an unknown host, 503 without a live backend, 502 when the backend refuses and 504 when it is silent', async () => {
    assert.equal((await request('/', { ':authority': 'nobody.test' })).status, 404);
    await etcd.put('/services/gone/@1', echo.address);
    await waitFor(async () => (await request('/', { ':authority': 'gone.test' })).status === 200, { what: 'gone routed' });
    await etcd.del('/services/gone/@1');
    await waitFor(async () => (await request('/', { ':authority': 'gone.test' })).status === 503, { what: 'gone 503' });
    const refused = await request('/', { ':authority': 'dead.test' });
    assert.equal(refused.status, 502);
    assert.match(refused.body.toString(), /^502 Bad Gateway/);
    const silent = await startBackend('silent', () => {});
    try {
      await etcd.put('/services/silent/@1', silent.address);
      await etcd.put('/routes/silent', JSON.stringify({ hosts: ['silent.example.com'], service: 'silent' }));
      await waitFor(async () => (await request('/', { ':authority': 'silent.example.com' })).status === 504, { timeout: 5000, what: 'silent 504' });
    } finally {
      await silent.close();
    }
    // The connection survived every failure.
    assert.equal(session.destroyed, false);
    assert.equal((await request('/', { ':authority': 'echo.test' })).status, 200);
  });

  it('resets only the stream when the backend fails after the response started', async () => {
    const cut = await startBackend('cut', (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '1000' });
      res.write('partial');
      setTimeout(() => res.socket?.destroy(), 50);
    });
    try {
      await etcd.put('/services/cut/@1', cut.address);
      await waitFor(async () => (await request('/', { ':authority': 'echo.test' })).status === 200);
      await waitFor(async () => {
        try {
          await request('/', { ':authority': 'cut.test' });
          return false;
        } catch (err) {
          return (err as NodeJS.ErrnoException).code === 'ERR_HTTP2_STREAM_ERROR';
        }
      }, { what: 'stream reset for a truncated response' });
      assert.equal((await request('/', { ':authority': 'echo.test' })).status, 200, 'the connection is still usable');
    } finally {
      await cut.close();
    }
  });

  it('serves Debian curl over HTTP/2 and over HTTP/1.1 on the same port', async () => {
    const h2 = await curl(router.httpsPort, 'echo.test', '/', certs.caFile, ['--http2']);
    assert.equal(h2.httpVersion, '2');
    assert.equal(h2.status, 200);
    const h1 = await curl(router.httpsPort, 'echo.test', '/', certs.caFile, ['--http1.1']);
    assert.equal(h1.httpVersion, '1.1');
    assert.equal(h1.status, 200);
    assert.equal(JSON.parse(h1.body).url, '/');
  });

  it('serves HTTP/1.1 over TLS as strictly as plain HTTP: keep-alive, X-Forwarded-Proto https, smuggling refused', async () => {
    const exchange = (bytes: string) => new Promise<string>((resolve, reject) => {
      const socket = tlsConnect({ host: '127.0.0.1', port: router.httpsPort, servername: 'echo.test', ca, ALPNProtocols: ['http/1.1'] }, () => socket.write(bytes));
      let text = '';
      socket.setEncoding('latin1');
      socket.on('data', (d: string) => { text += d; });
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
    });
    const two = await exchange('GET /one HTTP/1.1\r\nHost: echo.test\r\n\r\nGET /two HTTP/1.1\r\nHost: echo.test\r\nConnection: close\r\n\r\n');
    const answers = two.split(/(?=HTTP\/1\.1 )/);
    assert.equal(answers.length, 2, two);
    assert.match(answers[0], /^HTTP\/1\.1 200 /);
    // The echo's body comes chunked: its one chunk is the JSON.
    const echoed = JSON.parse(/\{.*\}/s.exec(answers[1])![0]) as { url: string; rawHeaders: string[] };
    assert.equal(echoed.url, '/two');
    assert.equal(echoed.rawHeaders[echoed.rawHeaders.findIndex((h) => h.toLowerCase() === 'x-forwarded-proto') + 1], 'https');
    const smuggled = await exchange('POST / HTTP/1.1\r\nHost: echo.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: echo.test\r\n\r\n');
    assert.match(smuggled, /^HTTP\/1\.1 400 /);
    assert.equal(smuggled.split(/(?=HTTP\/1\.1 )/).length, 1, 'one answer, then the connection closes: the smuggled request is never served');
  });

  it('refuses a stream with an invalid :authority (400) and keeps serving the connection', async () => {
    const reply = await request('/', { ':authority': 'a,b.test' });
    assert.equal(reply.status, 400);
    assert.equal(reply.headers.connection, undefined);
    assert.equal((await request('/', { ':authority': 'echo.test' })).status, 200);
  });

  it('joins HTTP/2 cookie crumbs into one Cookie header for the HTTP/1.1 upstream (RFC 9113 §8.2.3)', async () => {
    const reply = await new Promise<H2Reply>((resolve, reject) => {
      const stream = session.request({ ':path': '/', ':authority': 'echo.test', cookie: ['a=1', 'b=2'] });
      const chunks: Buffer[] = [];
      let headers: IncomingHttpHeaders = {};
      stream.on('response', (h) => { headers = h; });
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => resolve({ status: Number(headers[':status']), headers, body: Buffer.concat(chunks) }));
      stream.on('error', reject);
    });
    const seen = JSON.parse(reply.body.toString()) as { rawHeaders: string[] };
    const cookies = seen.rawHeaders.filter((_, i) => i % 2 === 0 && seen.rawHeaders[i].toLowerCase() === 'cookie').map((_, i, all) => all[i]);
    const values = seen.rawHeaders.flatMap((v, i) => (i % 2 === 1 && seen.rawHeaders[i - 1].toLowerCase() === 'cookie' ? [v] : []));
    assert.equal(cookies.length, 1, `one Cookie header, got ${JSON.stringify(values)}`);
    assert.equal(values[0], 'a=1; b=2');
  });
});
