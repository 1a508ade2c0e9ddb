// Regression tests for the defects a review found by attacking a running router
// (issue "Router hardening"): each test is named after the behaviour it guards.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get, parseResponses, rawExchange } from '../helpers/http.ts';
import { scrape, valueOf } from '../helpers/metrics.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { plainResponse, ScriptedBackend } from '../helpers/scripted-backend.ts';
import { waitFor } from '../helpers/wait.ts';

const FORGED = 'HTTP/1.1 200 X\r\ncontent-length: 6\r\n\r\nforged';
const BIG = 8 * 1024 * 1024;

/** Resident memory of the router's processes (primary and workers), bytes. */
function routerRss(pid: number): number {
  const pids = [pid, ...execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number)];
  let total = 0;
  for (const p of pids) {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
    if (match !== null) total += Number(match[1]) * 1024;
  }
  return total;
}

describe('router hardening', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let app: TestBackend;
  let big: TestBackend;
  let scripted: ScriptedBackend;

  before(async () => {
    etcd = await EtcdServer.start();
    app = await startBackend('app');
    big = await startBackend('big', (_req, res) => {
      res.writeHead(200, { 'content-length': BIG });
      res.end(Buffer.alloc(BIG, 120));
    });
    scripted = await new ScriptedBackend().listen();
    scripted.script('/framing-in-connection', [{ write: 'HTTP/1.1 200 X\r\nconnection: content-length\r\ncontent-length: 5\r\n\r\nhello' }]);
    scripted.script('/late-after-head', [{ write: 'HTTP/1.1 200 X\r\ncontent-length: 6\r\n\r\n' }, { pause: 30 }, { write: FORGED }]);
    scripted.script('/late-after-204', [{ write: 'HTTP/1.1 204 X\r\n\r\n' }, { pause: 30 }, { write: FORGED }]);
    scripted.script('/same-read-after-304', [{ write: `HTTP/1.1 304 X\r\n\r\n${FORGED}` }]);
    // Answered after the stray bytes of the previous response on this connection have arrived.
    scripted.script('/slow-next', [{ pause: 80 }, { write: plainResponse('real /slow-next') }]);
    scripted.script('/next', [{ write: plainResponse('real /next') }]);
    scripted.script('/', [{ write: plainResponse('real /') }]);
    await etcd.put('/services/app/@1', app.address);
    await etcd.put('/services/big/@1', big.address);
    await etcd.put('/services/scripted/@1', scripted.address);
    await etcd.put('/services/narrow/@1', app.address);
    await etcd.put('/routes/narrow', JSON.stringify({ hosts: ['narrow.test'], paths: ['/api'], service: 'narrow' }));
    await etcd.put('/routes/secure', JSON.stringify({ hosts: ['secure.test'], service: 'app', httpsRedirect: true }));
    await etcd.put('/routes/secure-challenge', JSON.stringify({ hosts: ['secure.test'], paths: ['/.well-known/acme-challenge/'], service: 'app' }));
    router = await startRouter({
      etcd: etcd.endpoint,
      workers: 1,
      args: ['--idle-timeout', '400ms', '--max-fails', '1', '--client-header-timeout', '1s'],
    });
    await waitFor(async () => (await get(router.httpPort, 'secure.test', '/.well-known/acme-challenge/x')).status === 200, { what: 'routes applied' });
    await waitFor(async () => (await get(router.httpPort, 'scripted.test', '/')).status === 200, { what: 'scripted backend routed' });
  });

  after(async () => {
    await router?.stop();
    await Promise.all([app?.close(), big?.close(), scripted?.close()]);
    await etcd?.close();
  });

  describe('framing is the router\'s own', () => {
    it('never lets a Connection token remove Content-Length: the body stays one request at the backend', async () => {
      const seen = app.requests.length;
      const smuggled = 'GET /admin/secret HTTP/1.1\r\nHost: internal\r\n\r\n';
      const reply = await rawExchange(router.httpPort, `POST /x HTTP/1.1\r\nHost: app.test\r\nConnection: content-length, close\r\nContent-Length: ${smuggled.length}\r\n\r\n${smuggled}`);
      assert.deepEqual(parseResponses(reply.text).responses.map((r) => r.status), [200]);
      await new Promise((resolve) => setTimeout(resolve, 100));
      const got = app.requests.slice(seen);
      assert.deepEqual(got.map((r) => `${r.method} ${r.url} ${r.bodyBytes}`), [`POST /x ${smuggled.length}`]);
    });

    it('never lets a Connection token remove Transfer-Encoding: a chunked body stays one request', async () => {
      const seen = app.requests.length;
      const reply = await rawExchange(router.httpPort, 'POST /te HTTP/1.1\r\nHost: app.test\r\nConnection: transfer-encoding, close\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n');
      assert.deepEqual(parseResponses(reply.text).responses.map((r) => r.status), [200]);
      const got = app.requests.slice(seen);
      assert.deepEqual(got.map((r) => `${r.method} ${r.url} ${r.bodyBytes}`), ['POST /te 11']);
    });

    it('never lets a Connection token remove Host', async () => {
      const seen = app.requests.length;
      const reply = await rawExchange(router.httpPort, 'GET /host HTTP/1.1\r\nHost: app.test\r\nConnection: host, close\r\n\r\n');
      assert.deepEqual(parseResponses(reply.text).responses.map((r) => r.status), [200]);
      assert.equal(app.requests[seen].headers.host, 'app.test');
    });

    it('frames a response whose backend names Content-Length in Connection, so the next response stays separate', async () => {
      const reply = await rawExchange(router.httpPort, 'GET /framing-in-connection HTTP/1.1\r\nHost: scripted.test\r\n\r\nGET /framing-in-connection HTTP/1.1\r\nHost: scripted.test\r\nConnection: close\r\n\r\n');
      const parsed = parseResponses(reply.text);
      assert.equal(parsed.error, null, reply.text);
      assert.deepEqual(parsed.responses.map((r) => [r.status, r.body, r.headers['content-length']]), [[200, 'hello', '5'], [200, 'hello', '5']]);
    });
  });

  describe('bytes from a backend that belong to no request', () => {
    it('never serves body bytes sent after a HEAD response to the next request', async () => {
      const head = await get(router.httpPort, 'scripted.test', '/late-after-head', { method: 'HEAD' });
      assert.equal(head.status, 200);
      // At once: a reused upstream connection would carry the stray bytes to this request first.
      const next = await get(router.httpPort, 'scripted.test', '/slow-next');
      assert.equal(next.body, 'real /slow-next');
      assert.equal((await get(router.httpPort, 'scripted.test', '/next')).body, 'real /next');
    });

    it('drops an idle upstream connection on which bytes arrive after a 204', async () => {
      assert.equal((await get(router.httpPort, 'scripted.test', '/late-after-204')).status, 204);
      await new Promise((resolve) => setTimeout(resolve, 80));
      assert.equal((await get(router.httpPort, 'scripted.test', '/next')).body, 'real /next');
    });

    it('never reuses a connection on which bytes followed a 304 in the same read', async () => {
      assert.equal((await get(router.httpPort, 'scripted.test', '/same-read-after-304')).status, 304);
      assert.equal((await get(router.httpPort, 'scripted.test', '/next')).body, 'real /next');
    });
  });

  it('stops reading a client that pipelines requests the router answers itself and never reads', async () => {
    const before = routerRss(router.child.pid!);
    const request = Buffer.from('GET / HTTP/1.1\r\nHost: nosuch.invalid\r\n\r\n');
    const batch = Buffer.concat(Array.from({ length: 2048 }, () => request));
    const socket = connect(router.httpPort, '127.0.0.1');
    socket.on('error', () => {});
    socket.pause();
    await new Promise<void>((resolve) => socket.once('connect', resolve));
    // Offer 64 MiB of requests; without backpressure the router reads them all and queues ~4× that in answers.
    const deadline = Date.now() + 3000;
    let offered = 0;
    while (offered < 64 * 1024 * 1024 && Date.now() < deadline) {
      offered += batch.length;
      if (!socket.write(batch)) {
        const drained = await Promise.race([
          new Promise<boolean>((resolve) => socket.once('drain', () => resolve(true))),
          new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 500)),
        ]);
        if (!drained) break;
      }
    }
    const accepted = socket.bytesWritten;
    const grown = routerRss(router.child.pid!) - before;
    socket.destroy();
    // What the kernel buffers on loopback while the router does not read (a few MiB) is accepted whatever it does;
    // without backpressure it read 16+ MiB in 3 s and grew by 400 MiB. With it, the growth is the heap's warm-up.
    assert.ok(accepted < 12 * 1024 * 1024, `the router read ${(accepted / 1048576).toFixed(1)} MiB of requests from a client that reads nothing`);
    assert.ok(grown < 160 * 1024 * 1024, `the router grew by ${(grown / 1048576).toFixed(1)} MiB`);
    assert.equal((await get(router.httpPort, 'app.test', '/after')).status, 200);
  });

  describe('routing on the normalised path', () => {
    it('routes dot segments and encoded dots on the path they resolve to, not on the prefix they start with', async () => {
      for (const path of ['/.well-known/acme-challenge/../../login', '/.well-known/acme-challenge/%2e%2e/%2E%2E/login', '/.well-known/acme-challenge/.%2e/.%2E/login']) {
        const reply = await get(router.httpPort, 'secure.test', path);
        assert.equal(reply.status, 308, path);
        assert.match(String(reply.headers.location), /\/login$/, path);
      }
    });

    it('refuses an encoded slash, backslash or NUL in the path with 400, and forwards nothing', async () => {
      const seen = app.requests.length;
      for (const path of ['/.well-known/acme-challenge/..%2f..%2flogin', '/.well-known/acme-challenge/..%5Clogin', '/.well-known/acme-challenge/..\\..\\login', '/a%00b', '/bad%zz']) {
        const reply = await rawExchange(router.httpPort, `GET ${path} HTTP/1.1\r\nHost: secure.test\r\nConnection: close\r\n\r\n`);
        assert.deepEqual(parseResponses(reply.text).responses.map((r) => r.status), [400], path);
      }
      assert.equal(app.requests.length, seen);
    });

    it('forwards the normalised path and leaves the query alone', async () => {
      const seen = app.requests.length;
      await get(router.httpPort, 'app.test', '/a/./b/../c/%7Euser/%41?q=/../%2e');
      assert.equal(app.requests[seen].url, '/a/c/~user/A?q=/../%2e');
    });
  });

  it('keeps a host named by a rule out of the --domain mapping', async () => {
    assert.equal((await get(router.httpPort, 'narrow.test', '/api')).status, 200);
    assert.equal((await get(router.httpPort, 'narrow.test', '/admin')).status, 404);
    // A host no rule names still gets the mapping.
    assert.equal((await get(router.httpPort, 'app.test', '/admin')).status, 200);
  });

  it('blames a client that stops reading, not the backend: no ejection', async () => {
    const before = await scrape(router.adminPort);
    const ejections = () => (valueOf(before.samples, 'tug_backend_ejections_total', { service: 'big' }) ?? 0);
    const socket = connect(router.httpPort, '127.0.0.1');
    socket.on('error', () => {});
    const closed = new Promise((resolve) => socket.once('close', resolve));
    socket.write('GET /big HTTP/1.1\r\nHost: big.test\r\n\r\n');
    // Read the first bytes, then stop reading for longer than --idle-timeout (400ms).
    await new Promise((resolve) => socket.once('data', resolve));
    socket.pause();
    await Promise.race([closed, new Promise((resolve) => setTimeout(resolve, 3000))]);
    socket.destroy();
    const after = await scrape(router.adminPort);
    assert.equal(valueOf(after.samples, 'tug_backend_ejections_total', { service: 'big' }) ?? 0, ejections());
    assert.equal(valueOf(after.samples, 'tug_backend_ejected', { service: 'big' }) ?? 0, 0);
    assert.doesNotMatch(router.output, /backend ejected.*big|"service":"big".*backend ejected/);
    assert.equal((await get(router.httpPort, 'big.test', '/again')).body.length, BIG);
  });

  it('takes Host and X-Forwarded-Host from an absolute-form target', async () => {
    const seen = app.requests.length;
    const reply = await rawExchange(router.httpPort, 'GET http://app.test/x HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n');
    assert.deepEqual(parseResponses(reply.text).responses.map((r) => r.status), [200]);
    const got = app.requests[seen];
    assert.equal(got.url, '/x');
    assert.equal(got.headers.host, 'app.test');
    assert.equal(got.headers['x-forwarded-host'], 'app.test');
  });

  it('drops client-sent Forwarded and X-Real-IP, and sets X-Real-IP to the client address', async () => {
    const seen = app.requests.length;
    await get(router.httpPort, 'app.test', '/ip', { headers: { forwarded: 'for=10.9.9.9', 'x-real-ip': '10.9.9.9' } });
    const got = app.requests[seen];
    assert.equal(got.headers.forwarded, undefined);
    assert.equal(got.headers['x-real-ip'], '127.0.0.1');
  });

  it('counts the requests it refuses while parsing (400, 408, 431) as unrouted', async () => {
    const count = async (code: string) => valueOf((await scrape(router.adminPort)).samples, 'tug_unrouted_requests_total', { code }) ?? 0;
    const before = { 400: await count('400'), 408: await count('408'), 431: await count('431') };
    await rawExchange(router.httpPort, 'GET / HTTP/1.1\nHost: app.test\n\n');
    await rawExchange(router.httpPort, `GET / HTTP/1.1\r\nHost: app.test\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`);
    await rawExchange(router.httpPort, 'GET / HTTP/1.1\r\nHost: app.test\r\n', 3000);
    await waitFor(async () => (await count('408')) > before[408], { timeout: 3000, what: 'the 408 counted' });
    assert.equal(await count('400'), before[400] + 1);
    assert.equal(await count('431'), before[431] + 1);
  });
});
