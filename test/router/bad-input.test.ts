// Bad input: the router parses as strictly as RFC 9112 asks of a server and an
// intermediary. Every malformed or ambiguous request is refused with an error
// status (or a closed connection), nothing of it reaches a backend — not even a
// request smuggled behind it — and the router keeps serving. Raw bytes over TCP,
// since no well-behaved client can send these.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get, rawExchange } from '../helpers/http.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';
import { badRequestGroups, CHUNKED_HELLO, HOST, statuses, STREAMED_TARGET, type BadCase } from '../helpers/bad-requests.ts';

/** Opens a connection, sends `head`, then `drip` every `interval` ms until the router closes it. */
function dripExchange(port: number, head: string, drip: string, interval: number, timeout: number): Promise<{ text: string; closed: boolean; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let closed = false;
    const ticker = setInterval(() => { if (socket.writable) socket.write(drip); }, interval);
    const timer = setTimeout(() => socket.destroy(), timeout);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => { closed = true; });
    socket.on('error', () => { closed = true; });
    socket.on('close', () => {
      clearInterval(ticker);
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed, ms: Date.now() - started });
    });
    socket.write(head);
  });
}

/** Sends `bytes`, waits until they are written (and until `ready()` if given), then resets the connection. */
async function sendAndReset(port: number, bytes: string, ready?: () => boolean): Promise<void> {
  const socket: Socket = connect(port, '127.0.0.1');
  socket.on('error', () => {});
  await new Promise<void>((resolve, reject) => socket.write(bytes, (err) => (err ? reject(err) : resolve())));
  if (ready) await waitFor(ready, { timeout: 3000, what: 'the router to forward the partial request' });
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.resetAndDestroy();
  await closed;
}

describe('bad input', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let slow: RouterProcess;
  let backend: TestBackend;
  /** Every request head that reached the backend; `complete` is known once the backend is done with it. */
  const heads: { url: string; complete: boolean | null }[] = [];
  const headUrls = (from: number) => heads.slice(from).map((h) => h.url);

  before(async () => {
    etcd = await EtcdServer.start();
    backend = await startBackend('app');
    backend.server.on('request', (req) => {
      const head = { url: req.url ?? '', complete: null as boolean | null };
      heads.push(head);
      req.once('close', () => { head.complete = req.complete; });
    });
    await etcd.put('/services/app/@1', backend.address);
    // One at a time, so that after() stops the first even if the second fails to start.
    router = await startRouter({ etcd: etcd.endpoint, workers: 1 });
    slow = await startRouter({ etcd: etcd.endpoint, workers: 1, args: ['--client-header-timeout', '500ms'] });
    await waitFor(async () => (await get(router.httpPort, 'app.test')).status === 200, { what: 'app routed' });
    await waitFor(async () => (await get(slow.httpPort, 'app.test')).status === 200, { what: 'app routed by the slow-client router' });
  });

  after(async () => {
    await Promise.all([router?.stop(), slow?.stop()]);
    await backend?.close();
    await etcd?.close();
  });

  /**
   * Sends one bad case and checks it was refused with `status` on a closed connection, then that a
   * normal request right after is served and is the only thing the backend saw since (for a bad
   * body: besides the head of the refused request itself, aborted).
   */
  async function assertRefused(c: BadCase): Promise<void> {
    const seen = backend.requests.length;
    const headsSeen = heads.length;
    const reply = await rawExchange(router.httpPort, c.bytes, 3000);
    assert.deepEqual(statuses(reply.text), [c.status], `one ${c.status} response, got: ${JSON.stringify(reply.text.slice(0, 200))}`);
    assert.ok(reply.closed, 'the router closes the connection');
    // A request forwarded by mistake (or smuggled behind the bad one) would be in flight by now;
    // a normal request on a fresh connection is served, and is the only one the backend sees.
    const next = await get(router.httpPort, 'app.test', '/after-bad-input');
    assert.equal(next.status, 200);
    assert.deepEqual(backend.requests.slice(seen).map((r) => r.url), ['/after-bad-input'], 'no request but the next one completed at the backend');
    const reached = headUrls(headsSeen).filter((url) => url !== '/after-bad-input');
    if (c.streamed) {
      assert.ok(reached.length === 0 || (reached.length === 1 && reached[0] === STREAMED_TARGET), `heads that reached the backend: ${reached}`);
      const own = heads.slice(headsSeen).filter((h) => h.url === STREAMED_TARGET);
      await waitFor(() => own.every((h) => h.complete !== null), { timeout: 3000, what: 'the backend to see the streamed request end' });
      assert.ok(own.every((h) => h.complete === false), 'the streamed request was aborted at the backend');
    } else {
      assert.deepEqual(reached, [], 'not even a request head reached the backend');
    }
  }

  for (const [group, cases] of badRequestGroups) {
    describe(group, () => {
      for (const c of cases) {
        it(`answers ${c.status} to ${c.name} and forwards nothing`, () => assertRefused(c));
      }
    });
  }

  describe('controls', () => {
    it('forwards a valid chunked POST with its whole body', async () => {
      const seen = backend.requests.length;
      const reply = await rawExchange(router.httpPort, `POST /chunked HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n`);
      assert.deepEqual(statuses(reply.text), [200]);
      const got = backend.requests.slice(seen);
      assert.equal(got.length, 1);
      assert.equal(got[0].url, '/chunked');
      assert.equal(got[0].bodyBytes, 11);
    });

    it('forwards a valid Content-Length POST with its whole body', async () => {
      const seen = backend.requests.length;
      const reply = await rawExchange(router.httpPort, `POST /length HTTP/1.1\r\n${HOST}Content-Length: 11\r\nConnection: close\r\n\r\nhello world`);
      assert.deepEqual(statuses(reply.text), [200]);
      const got = backend.requests.slice(seen);
      assert.equal(got.length, 1);
      assert.equal(got[0].url, '/length');
      assert.equal(got[0].bodyBytes, 11);
    });

    it('accepts what RFC 9112 allows: trailing OWS and any case in "chunked", HTTP/1.0, absolute-form', async () => {
      const seen = backend.requests.length;
      const allowed = [
        `POST /ows HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked \r\nConnection: close\r\n\r\n${CHUNKED_HELLO}`,
        `POST /case HTTP/1.1\r\n${HOST}Transfer-Encoding: CHUNKED\r\nConnection: close\r\n\r\n${CHUNKED_HELLO}`,
        `POST /http10 HTTP/1.0\r\n${HOST}Content-Length: 5\r\n\r\nhello`,
        'GET http://app.test:80/absolute HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n',
      ];
      for (const bytes of allowed) assert.deepEqual(statuses((await rawExchange(router.httpPort, bytes)).text), [200], bytes);
      assert.deepEqual(backend.requests.slice(seen).map((r) => [r.url, r.bodyBytes]), [['/ows', 5], ['/case', 5], ['/http10', 5], ['/absolute', 0]]);
    });
  });

  describe('slow and vanishing clients', () => {
    it('answers 408 to a head dripped slower than --client-header-timeout and forwards nothing', async () => {
      const seen = backend.requests.length;
      const headsSeen = heads.length;
      const reply = await dripExchange(slow.httpPort, `GET /slow HTTP/1.1\r\n${HOST}`, 'X-Slow: 1\r\n', 100, 5000);
      assert.deepEqual(statuses(reply.text), [408]);
      assert.ok(reply.closed, 'connection closed');
      assert.ok(reply.ms >= 400 && reply.ms < 3000, `closed after ${reply.ms} ms`);
      assert.equal(backend.requests.length, seen);
      assert.deepEqual(headUrls(headsSeen), []);
    });

    it('answers 408 to a connection that sends nothing', async () => {
      const started = Date.now();
      const reply = await rawExchange(slow.httpPort, '', 5000);
      assert.deepEqual(statuses(reply.text), [408]);
      assert.ok(reply.closed && Date.now() - started < 3000, `closed after ${Date.now() - started} ms`);
    });

    it('survives clients that reset mid-head and mid-body, and keeps serving', async () => {
      const seen = backend.requests.length;
      await sendAndReset(router.httpPort, 'GET /half-head HTTP/1.1\r\nHost: app.te');
      await sendAndReset(router.httpPort, `POST /half-head-2 HTTP/1.1\r\n${HOST}Content-Le`);
      // The head is complete, so the router streams it to the backend; the body never finishes.
      await sendAndReset(router.httpPort, `POST /half-body HTTP/1.1\r\n${HOST}Content-Length: 100\r\n\r\nhello`, () => headUrls(0).includes('/half-body'));
      await sendAndReset(router.httpPort, `POST /half-chunked HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n5\r\nhel`, () => headUrls(0).includes('/half-chunked'));
      await Promise.all(Array.from({ length: 20 }, (_, i) => sendAndReset(router.httpPort, `GET /burst-${i} HTTP/1.1\r\nHo`)));

      const reply = await get(router.httpPort, 'app.test', '/after-resets');
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'app\n');
      assert.equal((await router.health()).status, 200);
      assert.deepEqual(backend.requests.slice(seen).map((r) => r.url), ['/after-resets'], 'no truncated request completed at the backend');
    });
  });

  it('still serves a normal request after the whole battery, with no process lost', async () => {
    const reply = await get(router.httpPort, 'app.test', '/final');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'app\n');
    assert.equal(backend.requests.at(-1)?.url, '/final');
    assert.equal(router.child.exitCode, null, 'the router process is alive');
    assert.equal(slow.child.exitCode, null, 'the slow-client router process is alive');
    assert.equal(router.logs().filter((l) => l.msg === 'router worker died; restarting it').length, 0, 'no worker died');
    assert.equal(slow.logs().filter((l) => l.msg === 'router worker died; restarting it').length, 0, 'no worker died in the slow-client router');
    assert.equal((await router.health()).status, 200);
  });
});
