// A route's `compress` through the real router: gzip and brotli chosen by
// Accept-Encoding q-values, decoded by Node's zlib and by Debian's curl
// --compressed over HTTP/1.1 and HTTP/2; what is never encoded (small bodies,
// encoded ones, no-transform, ranges, other types, HEAD); and backpressure:
// a client that stops reading stops the backend, the body is never buffered whole.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect as h2connect, type ClientHttp2Session } from 'node:http2';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { promisify } from 'node:util';
import { brotliDecompressSync, createGunzip, gunzipSync, gzipSync } from 'node:zlib';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { h2request } from '../helpers/http2-client.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { curl } from '../helpers/tls-client.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const JSON_BODY = JSON.stringify(Array.from({ length: 200 }, (_, i) => ({ id: i, name: `item ${i}`, tags: ['a', 'b', 'c'] })));
const BIG = 32 * 1024 * 1024;

interface RawReply {
  readonly status: number;
  readonly headers: IncomingMessage['headers'];
  readonly body: Buffer;
}

describe('compression', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let certs: TestCertificates;
  let app: TestBackend;
  let session: ClientHttp2Session;
  /** The big body: bytes the backend's writes accepted so far, its hash once sent. */
  const big = { sent: 0, hash: '' };

  function h1(path: string, headers: Record<string, string> = {}, method = 'GET'): Promise<RawReply> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: router.httpPort, path, method, headers: { host: 'gz.test', ...headers }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      req.on('error', reject);
      req.end();
    });
  }
  const h2 = (path: string, headers: Record<string, string> = {}) => h2request(session, path, { ':authority': 'gz.test', ...headers });

  before(async () => {
    certs = await TestCertificates.create();
    const cert = await certs.issue('gz.test', ['gz.test']);
    etcd = await EtcdServer.start();
    app = await startBackend('app', (req, res) => {
      switch (req.url) {
        case '/json':
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(JSON_BODY), etag: '"v1"' });
          res.end(req.method === 'HEAD' ? undefined : JSON_BODY);
          return;
        case '/small':
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': 11 });
          res.end('{"ok":true}');
          return;
        case '/encoded': {
          const gz = gzipSync(JSON_BODY);
          res.writeHead(200, { 'content-type': 'application/json', 'content-encoding': 'gzip', 'content-length': gz.length });
          res.end(gz);
          return;
        }
        case '/no-transform':
          res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'public, no-transform' });
          res.end(JSON_BODY);
          return;
        case '/image':
          res.writeHead(200, { 'content-type': 'image/png' });
          res.end(Buffer.alloc(4096, 7));
          return;
        case '/big': {
          // Random base64 compresses to about 3/4: kernel buffers cannot hide a missing backpressure.
          res.writeHead(200, { 'content-type': 'text/plain' });
          const hash = createHash('sha256');
          big.sent = 0;
          big.hash = '';
          const pump = () => {
            while (big.sent < BIG) {
              const chunk = Buffer.from(randomBytes(48 * 1024).toString('base64'));
              hash.update(chunk);
              big.sent += chunk.length;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            big.hash = hash.digest('hex');
            res.end();
          };
          pump();
          return;
        }
        default:
          res.writeHead(404);
          res.end();
      }
    });
    await etcd.put('/services/app/@1', app.address);
    await etcd.put('/routes/gz', JSON.stringify({ hosts: ['gz.test'], service: 'app', compress: true }));
    await etcd.put('/routes/gz-json-only', JSON.stringify({ hosts: ['json-only.test'], service: 'app', compress: ['application/json'] }));
    await etcd.put('/tls/gz', cert.etcdValue);
    router = await startRouter({ etcd: etcd.endpoint, https: true });
    session = h2connect(`https://127.0.0.1:${router.httpsPort}`, { ca: await readFile(certs.caFile), servername: 'gz.test' });
    await waitFor(async () => (await h2('/json')).status === 200, { what: 'gz route over h2' });
  });

  after(async () => {
    session?.close();
    await router?.stop();
    await app?.close();
    await etcd?.close();
    await certs?.close();
  });

  it('gzips and brotli-encodes a JSON response for HTTP/1.1, chunked, with Vary and a weak ETag', async () => {
    const gz = await h1('/json', { 'accept-encoding': 'gzip' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers['content-length'], undefined);
    assert.equal(gz.headers['transfer-encoding'], 'chunked');
    assert.equal(gz.headers.vary, 'Accept-Encoding');
    assert.equal(gz.headers.etag, 'W/"v1"');
    assert.equal(gunzipSync(gz.body).toString(), JSON_BODY);
    assert.ok(gz.body.length < JSON_BODY.length / 3, `${gz.body.length} bytes for ${JSON_BODY.length}`);
    const br = await h1('/json', { 'accept-encoding': 'gzip, deflate, br' });
    assert.equal(br.headers['content-encoding'], 'br', 'brotli wins a tie');
    assert.equal(brotliDecompressSync(br.body).toString(), JSON_BODY);
    const plain = await h1('/json');
    assert.equal(plain.headers['content-encoding'], undefined);
    assert.equal(plain.headers['content-length'], String(JSON_BODY.length));
    assert.equal(plain.headers.vary, 'Accept-Encoding', 'caches learn the response varies even when it is not encoded');
    assert.equal(plain.headers.etag, '"v1"');
  });

  it('honours Accept-Encoding q-values over HTTP/2, with no length and no framing of its own', async () => {
    const gz = await h2('/json', { 'accept-encoding': 'br;q=0.5, gzip;q=0.9' });
    assert.equal(gz.headers['content-encoding'], 'gzip');
    assert.equal(gz.headers['content-length'], undefined);
    assert.equal(gunzipSync(gz.body).toString(), JSON_BODY);
    const br = await h2('/json', { 'accept-encoding': 'gzip;q=0, *' });
    assert.equal(br.headers['content-encoding'], 'br', '* stands for brotli, gzip is refused');
    assert.equal(brotliDecompressSync(br.body).toString(), JSON_BODY);
    const none = await h2('/json', { 'accept-encoding': 'gzip;q=0, br;q=0' });
    assert.equal(none.headers['content-encoding'], undefined);
    assert.equal(none.body.toString(), JSON_BODY);
  });

  it('is decoded by curl --compressed over HTTP/1.1 and HTTP/2', async () => {
    const one = await run('curl', ['-sS', '--compressed', '-H', 'Host: gz.test', '-D', '-', '--max-time', '10', `http://127.0.0.1:${router.httpPort}/json`], { timeout: 15_000, maxBuffer: 1 << 24 });
    const split = one.stdout.indexOf('\r\n\r\n');
    assert.match(one.stdout.slice(0, split), /content-encoding: (gzip|br)/i);
    assert.equal(one.stdout.slice(split + 4), JSON_BODY);
    const two = await curl(router.httpsPort, 'gz.test', '/json', certs.caFile, ['--http2', '--compressed']);
    assert.equal(two.httpVersion, '2');
    assert.match(two.verbose, /< content-encoding: (gzip|br)/i);
    assert.equal(two.body, JSON_BODY);
  });

  it('leaves alone small, encoded, no-transform, ranged, HEAD and non-compressible responses', async () => {
    const accept = { 'accept-encoding': 'gzip, br' };
    const small = await h1('/small', accept);
    assert.equal(small.headers['content-encoding'], undefined);
    assert.equal(small.body.toString(), '{"ok":true}');
    const encoded = await h2('/encoded', accept);
    assert.equal(encoded.headers['content-encoding'], 'gzip');
    assert.equal(gunzipSync(encoded.body).toString(), JSON_BODY, 'encoded once, by the backend');
    const noTransform = await h1('/no-transform', accept);
    assert.equal(noTransform.headers['content-encoding'], undefined);
    assert.equal(noTransform.body.toString(), JSON_BODY);
    const ranged = await h1('/json', { ...accept, range: 'bytes=0-99' });
    assert.equal(ranged.headers['content-encoding'], undefined);
    const head = await h1('/json', accept, 'HEAD');
    assert.equal(head.headers['content-encoding'], undefined);
    assert.equal(head.headers['content-length'], String(JSON_BODY.length));
    const image = await h2('/image', accept);
    assert.equal(image.headers['content-encoding'], undefined);
    assert.equal(image.body.length, 4096);
    const listed = await new Promise<RawReply>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: router.httpPort, path: '/big', headers: { host: 'json-only.test', ...accept }, agent: false }, (res) => {
        res.destroy();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.alloc(0) });
      }).on('error', reject).end();
    });
    assert.equal(listed.headers['content-encoding'], undefined, 'text/plain is not in this route\'s list');
  });

  it('streams a large body with backpressure: a client that stops reading stops the backend', async () => {
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      httpRequest({ host: '127.0.0.1', port: router.httpPort, path: '/big', headers: { host: 'gz.test', 'accept-encoding': 'gzip' }, agent: false }, resolve).on('error', reject).end();
    });
    assert.equal(res.headers['content-encoding'], 'gzip');
    const gunzip = createGunzip();
    const hash = createHash('sha256');
    let decoded = 0;
    gunzip.on('data', (c: Buffer) => { hash.update(c); decoded += c.length; });
    res.pause();
    // Reading nothing: the backend's writes stop being accepted well before the whole body.
    let last = -1;
    await waitFor(async () => {
      const now = big.sent;
      const still = now === last;
      last = now;
      if (!still) await sleep(300);
      return still;
    }, { timeout: 20_000, interval: 300, what: 'the backend stalls' });
    assert.ok(big.sent < BIG * 0.75, `backend stalled at ${big.sent} of ${BIG} bytes`);
    const done = new Promise<void>((resolve, reject) => {
      gunzip.on('end', resolve);
      gunzip.on('error', reject);
    });
    res.pipe(gunzip);
    await done;
    assert.equal(decoded, BIG);
    assert.equal(hash.digest('hex'), big.hash);
  });
});
