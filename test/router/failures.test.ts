// Upstream failures: what a client sees when backends refuse, drop, stall or
// time out, and what the router does about it (failover, one retry for
// idempotent requests, passive health ejection), with real backends and a real
// router process.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { startBackend, type BackendHandler, type TestBackend } from '../helpers/backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get, rawExchange, type Reply } from '../helpers/http.ts';
import { freePort } from '../helpers/ports.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

type LogLine = Record<string, any>;

/** An address where nothing listens: connecting to it is refused. */
async function deadAddress(): Promise<string> {
  return `127.0.0.1:${await freePort()}`;
}

/** Counts the TCP connections a backend accepts. */
function countConnections(backend: TestBackend): { count: number } {
  const counter = { count: 0 };
  backend.server.on('connection', () => { counter.count++; });
  return counter;
}

/** How many times `backend` saw a request carrying this x-request-id. */
function seen(backend: TestBackend, id: string): number {
  return backend.requests.filter((r) => r.headers['x-request-id'] === id).length;
}

describe('upstream failures', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  const backends: TestBackend[] = [];

  async function backend(name: string, handler?: BackendHandler): Promise<TestBackend> {
    const b = await startBackend(name, handler);
    backends.push(b);
    return b;
  }

  const logs = (): LogLine[] => router.logs();
  const ejections = (address: string): LogLine[] => logs().filter((l) => l.msg === 'backend ejected' && l.backend === address);
  const accessFor = (id: string): Promise<LogLine> => waitFor(() => logs().find((l) => l.component === 'access' && l.id === id), { what: `access log line for ${id}` });

  /** Puts the instances in order and waits until the service answers 200 (so the worker has all of them). */
  async function service(name: string, addresses: readonly string[]): Promise<void> {
    for (const [i, address] of addresses.entries()) await etcd.put(`/services/${name}/@${i + 1}`, address);
    await waitFor(async () => (await get(router.httpPort, `${name}.test`)).status === 200, { what: `${name} routed` });
  }

  before(async () => {
    etcd = await EtcdServer.start();
    router = await startRouter({
      etcd: etcd.endpoint,
      workers: 1,
      args: [
        '--max-fails', '2', '--eject-time', '1s', '--eject-max', '4s',
        '--response-timeout', '300ms', '--idle-timeout', '300ms', '--connect-timeout', '1s',
      ],
    });
  });

  after(async () => {
    await router?.stop();
    await Promise.all(backends.map((b) => b.close()));
    await etcd?.close();
  });

  it('sends a GET refused by one backend to the next one', async () => {
    const live = await backend('live');
    // The dead one first: the worker applies changes in order, so once live answers, both are known.
    await service('refused', [await deadAddress(), live.address]);
    const ids = Array.from({ length: 20 }, (_, i) => `refused-get-${i}`);
    const replies: Reply[] = [];
    for (const id of ids) replies.push(await get(router.httpPort, 'refused.test', '/', { headers: { 'x-request-id': id } }));
    assert.deepEqual(replies.map((r) => `${r.status} ${r.body}`), Array(20).fill('200 live\n'));
    const lines = await Promise.all(ids.map(accessFor));
    assert.ok(lines.some((l) => l.attempts === 2), 'the dead backend was in rotation and at least one request failed over from it');
    assert.ok(lines.every((l) => l.status === 200 && l.backend === live.address));
  });

  it('sends a POST refused by one backend to the next one with its whole body: nothing was sent', async () => {
    const live = await backend('post-live');
    await service('refused-post', [await deadAddress(), live.address]);
    const body = Buffer.alloc(64 * 1024, 'p');
    const ids = ['refused-post-1', 'refused-post-2'];
    // Two in a row over two instances: the rotation starts at the dead one for at least one of them.
    for (const id of ids) {
      const reply = await get(router.httpPort, 'refused-post.test', '/submit', { method: 'POST', body, headers: { 'x-request-id': id, 'content-type': 'application/octet-stream' } });
      assert.equal(reply.status, 200, `${id}: ${reply.body}`);
      assert.equal(reply.body, 'post-live\n');
    }
    const posts = live.requests.filter((r) => r.method === 'POST');
    assert.deepEqual(posts.map((r) => [r.headers['x-request-id'], r.bodyBytes]), ids.map((id) => [id, body.length]));
    const lines = await Promise.all(ids.map(accessFor));
    assert.ok(lines.some((l) => l.attempts === 2), 'a POST failed over from the refusing backend');
  });

  it('retries an idempotent request once on another backend when it fails after being sent', async () => {
    // Drops only /item: the GETs that wait for the route must not get it ejected first.
    const dropper = await backend('dropper', (req, res) => (req.url === '/item' ? req.socket.destroy() : res.end('up\n')));
    const ok = await backend('retry-ok');
    await service('retry', [dropper.address, ok.address]);
    let hit: string | null = null;
    for (let i = 0; i < 4 && hit === null; i++) {
      const id = `retry-get-${i}`;
      const reply = await get(router.httpPort, 'retry.test', '/item', { headers: { 'x-request-id': id } });
      assert.equal(reply.status, 200);
      assert.equal(reply.body, 'retry-ok\n');
      if (seen(dropper, id) > 0) hit = id;
    }
    assert.ok(hit !== null, 'one request went to the dropping backend first');
    assert.equal(seen(dropper, hit), 1, 'the failing backend saw it once');
    assert.equal(seen(ok, hit), 1, 'the other backend answered it');
    assert.equal((await accessFor(hit)).attempts, 2);
  });

  it('retries a request that failed after being sent only once', async () => {
    const droppers = await Promise.all(['drop-1', 'drop-2', 'drop-3'].map((n) => backend(n, (req) => req.socket.destroy())));
    for (const [i, d] of droppers.entries()) await etcd.put(`/services/all-drop/@${i + 1}`, d.address);
    await waitFor(async () => (await get(router.httpPort, 'all-drop.test')).status === 502, { what: 'all-drop routed' });
    const reply = await get(router.httpPort, 'all-drop.test', '/', { headers: { 'x-request-id': 'retry-once' } });
    assert.equal(reply.status, 502);
    assert.equal(reply.body, '502 Bad Gateway\n');
    assert.equal(droppers.reduce((n, d) => n + seen(d, 'retry-once'), 0), 2, 'first attempt and one retry, not a third backend');
    assert.equal((await accessFor('retry-once')).attempts, 2);
  });

  it('does not retry a POST that failed after being sent: 502, and only one backend saw it', async () => {
    // With and without a body: POST is not idempotent whatever it carries.
    for (const [name, body] of [['no-retry', '{"qty":1}'], ['no-retry-empty', undefined]] as const) {
      // Drops only the POSTs: the GETs that wait for the route must not get it ejected first.
      const dropper = await backend(`${name}-dropper`, (req, res) => (req.method === 'POST' ? req.socket.destroy() : res.end('up\n')));
      const ok = await backend(`${name}-ok`);
      await service(name, [dropper.address, ok.address]);
      let hit: string | null = null;
      // Two in a row over two instances: the rotation starts at the dropper for at least one of them.
      for (let i = 0; i < 2 && hit === null; i++) {
        const id = `${name}-${i}`;
        const reply = await get(router.httpPort, `${name}.test`, '/orders', { method: 'POST', body, headers: { 'x-request-id': id, ...(body ? { 'content-type': 'application/json' } : {}) } });
        if (seen(dropper, id) > 0) {
          hit = id;
          assert.equal(reply.status, 502, name);
          assert.equal(reply.body, '502 Bad Gateway\n');
        } else {
          assert.equal(reply.status, 200, name);
        }
      }
      assert.ok(hit !== null, `${name}: one POST went to the dropping backend`);
      assert.equal(seen(dropper, hit), 1);
      assert.equal(seen(ok, hit), 0, `${name}: the POST was not sent a second time`);
      assert.equal((await accessFor(hit)).attempts, 1);
    }
  });

  it('ejects a backend after --max-fails failures in a row, for a period that grows, and takes it back once healthy', async () => {
    const state = { failing: true };
    const flaky = await backend('flaky', (req, res) => {
      if (state.failing) req.socket.destroy();
      else res.end('flaky\n');
    });
    const steady = await backend('steady');
    await service('health', [flaky.address, steady.address]);

    // Clients never notice: each failed GET is retried on the steady backend.
    const statuses: number[] = [];
    const first = await waitFor(async () => {
      statuses.push((await get(router.httpPort, 'health.test')).status);
      return ejections(flaky.address)[0];
    }, { timeout: 3000, interval: 1, what: 'first ejection' });
    assert.deepEqual(statuses.filter((s) => s !== 200), []);
    assert.equal(flaky.requests.length, 2, '--max-fails 2: ejected at the second failure in a row');
    const until1 = Date.parse(first.until);
    const period1 = until1 - Date.parse(first.time);
    assert.ok(period1 > 900 && period1 <= 1000, `first ejection lasts --eject-time (1s), got ${period1} ms`);

    // While ejected, nothing reaches it.
    const during = [];
    for (let i = 0; i < 10; i++) during.push(await get(router.httpPort, 'health.test'));
    assert.ok(Date.now() < until1, 'the burst ran inside the ejection period (test machine too slow?)');
    assert.deepEqual(during.map((r) => `${r.status} ${r.body}`), Array(10).fill('200 steady\n'));
    assert.equal(flaky.requests.length, 2);

    // After the period it is on probation: the first failure ejects it again, for twice as long.
    const second = await waitFor(async () => {
      await get(router.httpPort, 'health.test');
      return ejections(flaky.address)[1];
    }, { timeout: 3000, interval: 20, what: 'second ejection' });
    assert.equal(flaky.requests.length, 3, 'one request on probation');
    assert.ok(Date.parse(second.time) >= until1, 'not tried before the first period ended');
    const until2 = Date.parse(second.until);
    const period2 = until2 - Date.parse(second.time);
    assert.ok(period2 > 1900 && period2 <= 2000, `second ejection in a row lasts twice as long, got ${period2} ms`);

    // Healthy again: it gets traffic once the second period is over.
    state.failing = false;
    await waitFor(async () => (await get(router.httpPort, 'health.test')).body === 'flaky\n', { timeout: 4000, interval: 20, what: 'flaky back in rotation' });
    assert.ok(Date.now() >= until2, 'served by the ejected backend before its period ended');
    assert.equal(flaky.requests.length, 4, 'nothing reached it during the second period');
    const after = await Promise.all([0, 1, 2, 3].map(async () => (await get(router.httpPort, 'health.test')).body));
    assert.ok(after.includes('flaky\n') && after.includes('steady\n'), `both in rotation again: ${after.join('')}`);
    assert.equal(ejections(flaky.address).length, 2);
  });

  it('answers 502 with a short text body when every backend refuses', async () => {
    const [one, two] = [await deadAddress(), await deadAddress()];
    await etcd.put('/services/all-dead/@1', one);
    await etcd.put('/services/all-dead/@2', two);
    // Wait until the table holds both before asking, so both are tried.
    await waitFor(async () => (await router.routes()).services['all-dead']?.length === 2, { what: 'both dead backends in the table' });
    const reply = await waitFor(async () => {
      const r = await get(router.httpPort, 'all-dead.test', '/', { headers: { 'x-request-id': 'all-dead' } });
      return r.status !== 404 ? r : null;
    }, { what: 'all-dead routed' });
    assert.equal(reply.status, 502);
    assert.equal(reply.body, '502 Bad Gateway\n');
    assert.match(String(reply.headers['content-type']), /^text\/plain/);
    assert.equal((await accessFor('all-dead')).attempts, 2, 'both backends were tried');
  });

  it('answers 503 for a known service without an instance and 404 for an unknown host', async () => {
    const a = await backend('gone-soon');
    await service('emptied', [a.address]);
    await etcd.del('/services/emptied/@1');
    const unavailable = await waitFor(async () => {
      const r = await get(router.httpPort, 'emptied.test');
      return r.status !== 200 ? r : null;
    }, { what: 'emptied service without instances' });
    assert.equal(unavailable.status, 503);
    assert.equal(unavailable.body, '503 Service Unavailable\n');
    const unknown = await get(router.httpPort, 'never-announced.test');
    assert.equal(unknown.status, 404);
    assert.equal(unknown.body, '404 Not Found\n');
  });

  it('answers 504 when response headers do not come within --response-timeout, and a route rule overrides it', async () => {
    // undici runs its header and body timeouts on coarse timers (a tick every
    // ~0.5 s): a 300 ms timeout fires after 0.5 to 1 s. The margins below are
    // wider than that, so a rule is told apart from the flag by outcome, not
    // by a few milliseconds.
    const silent = await backend('silent', () => {});
    const late = await backend('late', (req, res) => { setTimeout(() => res.end('late\n'), 1500); });
    await etcd.put('/services/silent/@1', silent.address);
    await etcd.put('/services/late/@1', late.address);
    await etcd.put('/routes/silent-short', JSON.stringify({ hosts: ['silent.example'], service: 'silent', timeouts: { response: 200 } }));
    await etcd.put('/routes/late-long', JSON.stringify({ hosts: ['late.example'], service: 'late', timeouts: { response: 3000 } }));
    await waitFor(async () => (await get(router.httpPort, 'silent.example', '/', { headers: { 'x-request-id': 'silent-probe' } })).status === 504, { what: 'silent.example routed' });

    const timed = async (host: string, id: string) => {
      const start = performance.now();
      const reply = await get(router.httpPort, host, '/', { headers: { 'x-request-id': id } });
      return { reply, ms: performance.now() - start };
    };
    // Independent requests: run them side by side.
    const [global, short, viaFlag, viaRule] = await Promise.all([
      timed('silent.test', 'silent-global'),
      timed('silent.example', 'silent-rule'),
      timed('late.test', 'late-global'),
      timed('late.example', 'late-rule'),
    ]);
    assert.equal(global.reply.status, 504);
    assert.equal(global.reply.body, '504 Gateway Timeout\n');
    assert.ok(global.ms >= 290 && global.ms < 1300, `--response-timeout 300ms, answered after ${global.ms} ms`);
    assert.equal((await accessFor('silent-global')).error, 'UND_ERR_HEADERS_TIMEOUT');

    assert.equal(short.reply.status, 504);
    assert.ok(short.ms >= 190 && short.ms < 1300, `rule timeout 200 ms, answered after ${short.ms} ms`);

    assert.equal(viaFlag.reply.status, 504, 'an answer after 1.5 s is too late for --response-timeout 300ms');
    assert.equal(viaRule.reply.status, 200, 'the rule\'s 3 s wins over the flag');
    assert.equal(viaRule.reply.body, 'late\n');
    assert.ok(viaRule.ms >= 1400, `answered after ${viaRule.ms} ms`);
  });

  it('cuts the client off when the body stalls past --idle-timeout: a truncated response, never a complete one', async () => {
    const stalled = (chunked: boolean): BackendHandler => (req, res) => {
      res.writeHead(200, chunked ? { 'content-type': 'text/plain' } : { 'content-type': 'text/plain', 'content-length': '100' });
      res.write('x'.repeat(10));
    };
    for (const [name, chunked] of [['stall', false], ['stall-chunked', true]] as const) {
      const b = await backend(name, stalled(chunked));
      await etcd.put(`/services/${name}/@1`, b.address);
    }
    await waitFor(async () => (await router.routes()).services['stall-chunked']?.length === 1, { what: 'stall services announced' });
    // The worker applies changes right after the primary: wait until it routes them too.
    await waitFor(async () => !(await rawExchange(router.httpPort, 'GET / HTTP/1.1\r\nHost: stall-chunked.test\r\n\r\n', 50)).text.startsWith('HTTP/1.1 404'), { what: 'stall routed' });

    const exchange = async (host: string) => {
      const start = performance.now();
      const { text, closed } = await rawExchange(router.httpPort, `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`, 3000);
      const [head, body = ''] = text.split('\r\n\r\n');
      return { head, body, closed, ms: performance.now() - start };
    };
    const [sized, chunked] = await Promise.all([exchange('stall.test'), exchange('stall-chunked.test')]);

    assert.match(sized.head, /^HTTP\/1\.1 200 /);
    assert.match(sized.head, /\r\ncontent-length: 100(\r\n|$)/i);
    assert.ok(sized.closed, 'the router closed the connection');
    assert.equal(sized.body, 'x'.repeat(10), 'the client got the part that was sent, and no more');
    assert.ok(sized.ms >= 290 && sized.ms < 2000, `cut off after ${sized.ms} ms`);

    assert.match(chunked.head, /^HTTP\/1\.1 200 /);
    assert.match(chunked.head, /\r\ntransfer-encoding: chunked(\r\n|$)/i);
    assert.ok(chunked.closed, 'the router closed the connection');
    assert.match(chunked.body, /^a\r\nx{10}\r\n$/, 'the part that was sent, without the last-chunk that would make it look complete');
    assert.ok(chunked.ms >= 290 && chunked.ms < 2000, `cut off after ${chunked.ms} ms`);
  });

  it('survives clients that disconnect mid-response or while waiting, aborts the upstream and does not blame the backend', async () => {
    const upstreamClosed: string[] = [];
    const streamer = await backend('streamer', (req, res) => {
      res.once('close', () => { if (!res.writableFinished) upstreamClosed.push(req.headers['x-request-id'] as string); });
      if (req.url === '/wait') return; // never answers
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const timer = setInterval(() => res.write(Buffer.alloc(16 * 1024)), 10);
      res.once('close', () => clearInterval(timer));
      res.write(Buffer.alloc(16 * 1024));
    });
    await etcd.put('/services/streamer/@1', streamer.address);
    const live = await backend('still-here');
    await service('still-here', [live.address]);
    await waitFor(async () => (await rawHead('/stream', 'routed-probe')) === 'HTTP/1.1 200 OK', { what: 'streamer routed' });

    /** Sends a GET, and destroys the connection on the first response byte (or after `ms` without one). */
    function rawHead(path: string, id: string, ms = 2000): Promise<string> {
      return new Promise((resolve, reject) => {
        const socket = connect(router.httpPort, '127.0.0.1');
        const timer = setTimeout(() => { socket.destroy(); resolve('timeout'); }, ms);
        socket.once('data', (chunk: Buffer) => {
          clearTimeout(timer);
          socket.destroy();
          resolve(chunk.toString('latin1').includes('404') ? 'no route' : chunk.toString('latin1').split('\r\n')[0]);
        });
        socket.on('error', reject);
        socket.write(`GET ${path} HTTP/1.1\r\nHost: streamer.test\r\nx-request-id: ${id}\r\n\r\n`);
      });
    }

    for (const id of ['gone-1', 'gone-2', 'gone-3']) {
      assert.equal(await rawHead('/stream', id), 'HTTP/1.1 200 OK');
      await waitFor(() => upstreamClosed.includes(id), { timeout: 2000, what: `upstream response ${id} aborted` });
    }
    // Gone while waiting for the response head.
    const waiting = rawHead('/wait', 'gone-waiting', 150);
    await waitFor(() => seen(streamer, 'gone-waiting') > 0, { what: 'waiting request at the backend' });
    assert.equal(await waiting, 'timeout');
    await waitFor(() => upstreamClosed.includes('gone-waiting'), { timeout: 2000, what: 'waiting upstream request aborted' });
    assert.equal((await accessFor('gone-waiting')).status, 499);

    assert.deepEqual(ejections(streamer.address), [], 'client disconnects do not count against the backend');
    assert.equal(router.child.exitCode, null);
    assert.deepEqual(logs().filter((l) => l.level === 'error' || l.level === 'fatal'), []);
    const reply = await get(router.httpPort, 'still-here.test');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'still-here\n');
    assert.equal((await router.health()).status, 200);
  });

  it('reuses upstream keep-alive connections across client connections', async () => {
    const pooled = await backend('pooled');
    const connections = countConnections(pooled);
    await service('pooled', [pooled.address]);
    const before = connections.count;
    const requestsBefore = pooled.requests.length;
    const replies: Reply[] = [];
    for (let i = 0; i < 30; i++) replies.push(await get(router.httpPort, 'pooled.test'));
    assert.deepEqual(replies.map((r) => r.status).filter((s) => s !== 200), []);
    assert.equal(pooled.requests.length - requestsBefore, 30);
    assert.ok(connections.count - before <= 1, `30 sequential requests opened ${connections.count - before} new upstream connections`);
  });

  it('retries an idempotent request on a new connection when its only backend closes the reused one as the request goes out', async () => {
    // The race behind idle keep-alive timeouts, made deterministic: these
    // backends check their 200 ms idle timeout only when the next request
    // arrives, and then close the connection without answering, as a backend
    // does when its idle timer fires just as the router writes the request.
    const closesIdle = (name: string) => {
      const idleSince = new WeakMap<Socket, number>();
      return backend(name, (req, res) => {
        const since = idleSince.get(req.socket);
        if (since !== undefined && performance.now() - since > 200) {
          req.socket.destroy();
          return;
        }
        res.once('finish', () => idleSince.set(req.socket, performance.now()));
        res.end(`${name}\n`);
      });
    };
    const [getter, poster] = await Promise.all([closesIdle('closer-get'), closesIdle('closer-post')]);
    // Single-backend services: no other backend to fail over to.
    await service('closer-get', [getter.address]);
    await service('closer-post', [poster.address]);
    await sleep(250);

    const [reply, post] = await Promise.all([
      get(router.httpPort, 'closer-get.test', '/', { headers: { 'x-request-id': 'closer-get' } }),
      get(router.httpPort, 'closer-post.test', '/', { method: 'POST', body: 'x', headers: { 'x-request-id': 'closer-post' } }),
    ]);
    assert.equal(`${reply.status} ${reply.body}`, '200 closer-get\n');
    assert.equal(seen(getter, 'closer-get'), 2, 'sent on the closed connection, then on a new one');
    assert.equal((await accessFor('closer-get')).attempts, 2);
    // Not a POST: it may have been processed.
    assert.equal(post.status, 502);
    assert.equal(seen(poster, 'closer-post'), 1);
  });

  it('has no client-visible errors when backends close idle keep-alive connections', async () => {
    // One announces its idle timeout (Node's Keep-Alive: timeout=0 for 100 ms),
    // one closes idle connections after 100 ms without saying so (as Go's net/http does).
    const announced = await backend('ka-announced');
    announced.server.keepAliveTimeout = 100;
    const silentClose = await backend('ka-silent');
    silentClose.server.keepAliveTimeout = 0;
    const idleTimers = new Map<Socket, NodeJS.Timeout>();
    silentClose.server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const socket = req.socket;
      clearTimeout(idleTimers.get(socket));
      res.once('finish', () => idleTimers.set(socket, setTimeout(() => socket.destroy(), 100)));
      socket.once('close', () => { clearTimeout(idleTimers.get(socket)); idleTimers.delete(socket); });
    });
    const counts = [countConnections(announced), countConnections(silentClose)];
    // Single-backend services: nothing to fail over to.
    await service('ka-announced', [announced.address]);
    await service('ka-silent', [silentClose.address]);
    const starts = counts.map((c) => c.count);

    const run = async (host: string, name: string) => {
      const replies: string[] = [];
      for (let i = 0; i < 10; i++) {
        if (i > 0) await sleep(150);
        const reply = await get(router.httpPort, host, '/', { headers: { 'x-request-id': `${name}-${i}` } }).catch((err: Error) => ({ status: 0, body: err.message }));
        replies.push(`${reply.status} ${reply.body}`);
      }
      assert.deepEqual(replies, Array(10).fill(`200 ${name}\n`), host);
      // 50 ms after the close is long enough for the pool to have dropped the
      // closed connection: no request needed the same-backend retry either.
      const attempts = await Promise.all(Array.from({ length: 10 }, async (_, i) => (await accessFor(`${name}-${i}`)).attempts));
      assert.deepEqual(attempts, Array(10).fill(1), `${host}: attempts`);
    };
    await Promise.all([run('ka-announced.test', 'ka-announced'), run('ka-silent.test', 'ka-silent')]);
    // The scenario really happened: idle connections were closed, so most requests needed a new one.
    for (const [i, c] of counts.entries()) assert.ok(c.count - starts[i] >= 5, `backend ${i} accepted ${c.count - starts[i]} connections`);
    assert.deepEqual(ejections(announced.address), []);
    assert.deepEqual(ejections(silentClose.address), []);
  });
});
