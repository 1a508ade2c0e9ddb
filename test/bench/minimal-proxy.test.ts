// node-min, the bench's floor contender (bench/minimal-proxy.ts): its numbers
// mean something only if it forwards what the other contenders forward. Bodies
// come back byte for byte on every protocol (it reads upstream bytes into a
// reused buffer, so a buffer handed on too early would show here as mixed
// bodies), the forwarding headers reach the upstream, and chunked responses
// pass through without leaving the upstream connection unusable.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { connect as connectHttp2, type ClientHttp2Session } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Pool } from 'undici';
import { startNodeMin, type Contender } from '../../bench/contenders.ts';
import { startUpstreams, type Upstreams } from '../../bench/upstreams.ts';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates, type IssuedCertificate } from '../helpers/certificates.ts';
import { freePort } from '../helpers/ports.ts';

const BODIES: Record<string, Buffer> = { '/small': Buffer.from('hello world\n'), '/16k': Buffer.alloc(16 * 1024, 'x'), '/1m': Buffer.alloc(1024 * 1024, 'y') };
const CHUNKED = Buffer.concat([Buffer.alloc(5, 'a'), Buffer.alloc(70_000, 'b'), Buffer.from('end\n')]);

describe('node-min, the minimal Node proxy of the bench', { timeout: 60_000 }, () => {
  let dir: string;
  let certs: TestCertificates;
  let cert: IssuedCertificate;
  let upstreams: Upstreams;
  let echo: TestBackend;
  let overNginx: Contender;
  let overEcho: Contender;

  const start = async (ports: readonly number[], workers: number) => startNodeMin({
    dir, port: await freePort(), adminPort: 0, upstreams: ports, workers, keepalive: 0, etcd: '',
    tls: { port: await freePort(), certFile: cert.certFile, keyFile: cert.keyFile },
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'tug-node-min-'));
    chmodSync(dir, 0o755); // nginx workers read the upstream files
    certs = await TestCertificates.create();
    cert = await certs.issue('bench.bench', ['bench.bench'], { ips: ['127.0.0.1'] });
    upstreams = await startUpstreams(dir, [await freePort(), await freePort()]);
    echo = await startBackend('echo', (req, res) => {
      if (req.url !== '/chunked') return void res.end(JSON.stringify(req.headers));
      // No Content-Length: node:http answers chunked; the pause splits the body across reads.
      res.write(CHUNKED.subarray(0, 5));
      setTimeout(() => res.end(CHUNKED.subarray(5)), 20);
    });
    overNginx = await start(upstreams.ports, 2);
    overEcho = await start([echo.port], 1);
  });

  after(async () => {
    await overNginx?.process.stop();
    await overEcho?.process.stop();
    await upstreams?.process.stop();
    await echo?.close();
    await certs?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const pools = (c: Contender) => [
    new Pool(`http://127.0.0.1:${c.port}`, { connections: 8 }),
    new Pool(`https://127.0.0.1:${c.tlsPort}`, { connections: 8, connect: { rejectUnauthorized: false } }),
  ];
  const h2get = (session: ClientHttp2Session, path: string) => new Promise<{ headers: Record<string, unknown>; body: Buffer }>((resolve, reject) => {
    const stream = session.request({ ':path': path, ':authority': 'bench.bench' });
    const parts: Buffer[] = [];
    let headers: Record<string, unknown> = {};
    stream.on('response', (h) => { headers = h; });
    stream.on('data', (d: Buffer) => parts.push(d));
    stream.on('end', () => resolve({ headers, body: Buffer.concat(parts) }));
    stream.on('error', reject);
  });
  const h2session = (c: Contender) => connectHttp2(`https://127.0.0.1:${c.tlsPort}`, { rejectUnauthorized: false });

  it('passes bodies through byte for byte over HTTP/1.1, HTTPS and HTTP/2, sizes interleaved on the same connections', async () => {
    const paths = Object.keys(BODIES);
    const [plain, tls] = pools(overNginx);
    const session = h2session(overNginx);
    try {
      const checks = Array.from({ length: 240 }, async (_, i) => {
        const path = paths[i % paths.length];
        if (i % 3 === 2) {
          const { body } = await h2get(session, path);
          assert.ok(body.equals(BODIES[path]), `HTTP/2 ${path}: ${body.length} bytes, not the file's`);
          return;
        }
        const res = await (i % 3 === 0 ? plain : tls).request({ path, method: 'GET', headers: { host: 'bench.bench' } });
        const body = Buffer.from(await res.body.arrayBuffer());
        assert.equal(res.statusCode, 200);
        assert.ok(body.equals(BODIES[path]), `${i % 3 === 0 ? 'HTTP' : 'HTTPS'} ${path}: ${body.length} bytes, not the file's`);
      });
      await Promise.all(checks);
    } finally {
      session.close();
      await Promise.all([plain.close(), tls.close()]);
    }
  });

  it('adds X-Forwarded-For (after the client\'s), X-Forwarded-Proto and a request id on every protocol', async () => {
    const [plain, tls] = pools(overEcho);
    const session = h2session(overEcho);
    try {
      const seen: Record<string, string>[] = [];
      for (const pool of [plain, tls]) {
        const res = await pool.request({ path: '/', method: 'GET', headers: { host: 'bench.bench', 'x-forwarded-for': '192.0.2.1' } });
        seen.push(await res.body.json() as Record<string, string>);
      }
      seen.push(JSON.parse((await h2get(session, '/')).body.toString()));
      assert.deepEqual(seen.map((h) => [h['x-forwarded-for'], h['x-forwarded-proto'], h.host]), [
        ['192.0.2.1, 127.0.0.1', 'http', 'bench.bench'],
        ['192.0.2.1, 127.0.0.1', 'https', 'bench.bench'],
        ['127.0.0.1', 'https', 'bench.bench'],
      ]);
      const ids = seen.map((h) => h['x-request-id']);
      assert.ok(ids.every((id) => /^[0-9a-f-]{36}$/.test(id)), `request ids: ${ids}`);
      assert.equal(new Set(ids).size, 3);
    } finally {
      session.close();
      await Promise.all([plain.close(), tls.close()]);
    }
  });

  it('passes a chunked response through on HTTP/1.1 and HTTP/2, and the upstream connection serves the next request', async () => {
    const [plain, tls] = pools(overEcho);
    const session = h2session(overEcho);
    try {
      for (let round = 0; round < 2; round++) {
        for (const pool of [plain, tls]) {
          const res = await pool.request({ path: '/chunked', method: 'GET', headers: { host: 'bench.bench' } });
          assert.ok(Buffer.from(await res.body.arrayBuffer()).equals(CHUNKED));
        }
        assert.ok((await h2get(session, '/chunked')).body.equals(CHUNKED));
        assert.equal(JSON.parse((await h2get(session, '/after')).body.toString())['x-forwarded-proto'], 'https');
      }
    } finally {
      session.close();
      await Promise.all([plain.close(), tls.close()]);
    }
  });
});
