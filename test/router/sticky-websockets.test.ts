// Sticky sessions for WebSocket upgrades: a client whose first request is the
// upgrade is pinned by the 101 (the same Set-Cookie, from the same rule, as any
// response), its reconnects reach that backend on every worker, a dead pinned
// backend is replaced and the 101 pins the new one; the route's responseHeaders
// apply to the 101 but never touch the handshake's own fields.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';
import { startWebSocketBackend, type WebSocketBackend } from '../helpers/websocket-backend.ts';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

interface Upgraded {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  /** The backend that answered (its X-Backend on the 101), or '' when none said. */
  readonly backend: string;
}

/** The Set-Cookie line for `name`, or null. */
function setCookieLine(headers: IncomingHttpHeaders, name: string): string | null {
  return (headers['set-cookie'] ?? []).find((line) => line.startsWith(`${name}=`)) ?? null;
}

/** The `name=value` a Set-Cookie line gives back to the server. */
const cookiePair = (line: string): string => line.split(';')[0];

describe('sticky sessions on WebSocket upgrades', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let certs: TestCertificates;
  let ca: string;
  const backends: WebSocketBackend[] = [];

  /** One upgrade request on a fresh connection; the 101's socket is closed at once. */
  function upgrade(path: string, { cookie, tls = false }: { cookie?: string; tls?: boolean } = {}): Promise<Upgraded> {
    const key = randomBytes(16).toString('base64');
    const headers: Record<string, string> = { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': key };
    if (cookie !== undefined) headers.cookie = cookie;
    return new Promise((resolve, reject) => {
      const options = { host: '127.0.0.1', path, headers, agent: false as const, timeout: 5000 };
      const req = tls ? httpsRequest({ ...options, port: router.httpsPort, ca }) : httpRequest({ ...options, port: router.httpPort });
      req.on('upgrade', (res: IncomingMessage, socket: Socket) => {
        socket.destroy();
        // The handshake survives every edit: a client checks this before it opens.
        if (res.headers['sec-websocket-accept'] !== createHash('sha1').update(`${key}${GUID}`).digest('base64')) {
          reject(new Error(`the 101 of ${path} lost its Sec-WebSocket-Accept`));
          return;
        }
        resolve({ status: 101, headers: res.headers, backend: String(res.headers['x-backend'] ?? '') });
      });
      req.on('response', (res: IncomingMessage) => {
        res.resume();
        resolve({ status: res.statusCode ?? 0, headers: res.headers, backend: '' });
      });
      req.on('timeout', () => req.destroy(new Error(`no answer to the upgrade of ${path}`)));
      req.on('error', reject);
      req.end();
    });
  }

  before(async () => {
    certs = await TestCertificates.create();
    const cert = await certs.issue('tug ws', [], { ips: ['127.0.0.1'] });
    ca = readFileSync(certs.caFile, 'utf8');
    etcd = await EtcdServer.start();
    for (const name of ['a', 'b', 'c']) {
      const backend = await startWebSocketBackend(name);
      backends.push(backend);
      await etcd.put(`/services/live/${name}`, backend.address);
    }
    await etcd.put('/routes/live', JSON.stringify({
      paths: ['/live'], service: 'live', sticky: { cookie: 'pin', ttl: '30m' },
      // Sec-WebSocket-Accept is not a reserved name in rules: removing it from a 101 would break the handshake.
      responseHeaders: { set: { 'X-Frame-Options': 'DENY' }, remove: ['Sec-WebSocket-Accept'] },
    }));
    await etcd.put('/routes/plain', JSON.stringify({ paths: ['/plain'], service: 'live' }));
    const refuser = await startWebSocketBackend('refuser', { refuseWith: 403 });
    backends.push(refuser);
    await etcd.put('/services/refuser/r', refuser.address);
    await etcd.put('/routes/refused', JSON.stringify({ paths: ['/refused'], service: 'refuser', sticky: true, responseHeaders: { set: { 'X-Frame-Options': 'DENY' } } }));
    // Two workers: fresh connections are spread over both. --max-fails 1: a dead backend is ejected at once.
    router = await startRouter({ etcd: etcd.endpoint, workers: 2, https: true, args: ['--cert', cert.certFile, '--key', cert.keyFile, '--max-fails', '1'] });
    // Every worker has the cluster key once a few upgrades in a row all carry a cookie.
    await waitFor(async () => {
      for (let i = 0; i < 6; i++) if (setCookieLine((await upgrade('/live')).headers, 'pin') === null) return false;
      return true;
    }, { timeout: 10_000, what: 'a sticky cookie on every 101' });
  });

  after(async () => {
    await router?.stop();
    await Promise.all(backends.map((b) => b.close()));
    await etcd?.close();
    await certs?.close();
  });

  it('pins a client whose first request is the upgrade: the 101 carries the cookie an HTTP response would', async () => {
    const first = await upgrade('/live');
    assert.equal(first.status, 101);
    const line = setCookieLine(first.headers, 'pin');
    assert.ok(line !== null, 'the 101 sets the sticky cookie');
    const backend = backends.find((b) => b.name === first.backend)!;
    assert.equal(line, `pin=${backend.address}~${line.split('~')[1].split(';')[0]}; Max-Age=1800; Path=/; HttpOnly; SameSite=Lax`);
    // A plain request to the same route (the backends answer it 426) gets a cookie with the same attributes.
    const plain = await get(router.httpPort, '127.0.0.1', '/live');
    const plainLine = setCookieLine(plain.headers as IncomingHttpHeaders, 'pin')!;
    assert.equal(plainLine.replace(/^pin=[^;]*/, ''), line.replace(/^pin=[^;]*/, ''), 'the same attributes as on an HTTP response');
    // On the HTTPS listener the 101's cookie is Secure, as an HTTPS response's is.
    const secure = await upgrade('/live', { tls: true });
    assert.match(setCookieLine(secure.headers, 'pin')!, /^pin=127\.0\.0\.1:\d+~[A-Za-z0-9_-]{22}; Max-Age=1800; Path=\/; HttpOnly; SameSite=Lax; Secure$/);
    // The route's responseHeaders apply to the 101; its handshake fields stay (checked in upgrade()).
    assert.equal(first.headers['x-frame-options'], 'DENY');
    assert.equal(first.headers.upgrade, 'websocket');
  });

  it('sends reconnects carrying the cookie to the pinned backend on both workers, with no new cookie', async () => {
    const first = await upgrade('/live');
    const cookie = cookiePair(setCookieLine(first.headers, 'pin')!);
    const reconnects: Upgraded[] = [];
    // Fresh connections: the kernel spreads them over both workers.
    for (let i = 0; i < 16; i++) reconnects.push(await upgrade('/live', { cookie: `other=1; ${cookie}`, tls: i % 2 === 1 }));
    assert.deepEqual(new Set(reconnects.map((r) => r.backend)), new Set([first.backend]), 'every reconnect reached the pinned backend');
    assert.equal(reconnects.filter((r) => r.headers['set-cookie'] !== undefined).length, 0, 'a pinned upgrade gets no new cookie');
    // A real WebSocket client opens through the edited 101 and talks to the pinned backend.
    const ws = new WebSocket(`ws://127.0.0.1:${router.httpPort}/live`, { headers: { cookie } });
    const echoed = await new Promise<string>((resolve, reject) => {
      ws.onopen = () => ws.send('hello');
      ws.onmessage = (event) => resolve(String(event.data));
      ws.onerror = () => reject(new Error('the WebSocket did not open'));
    });
    ws.close();
    assert.equal(echoed, `${first.backend}: hello`);
  });

  it('sets no cookie on the 101 of a route without sticky', async () => {
    const seen = new Set<string>();
    for (let i = 0; i < 6; i++) {
      const reply = await upgrade('/plain');
      assert.equal(reply.status, 101);
      assert.equal(reply.headers['set-cookie'], undefined);
      assert.equal(reply.headers['x-frame-options'], undefined, 'another route\'s responseHeaders do not leak');
      seen.add(reply.backend);
    }
    assert.ok(seen.size > 1, 'upgrades without sticky are balanced');
  });

  it('edits a refused upgrade\'s relayed answer like any response: the pin and the route\'s responseHeaders', async () => {
    const refused = await upgrade('/refused');
    assert.equal(refused.status, 403);
    const refuser = backends.find((b) => b.name === 'refuser')!;
    assert.match(setCookieLine(refused.headers, 'tug_sticky') ?? '', new RegExp(`^tug_sticky=${refuser.address}~[A-Za-z0-9_-]{22}; Max-Age=3600; Path=/; HttpOnly; SameSite=Lax$`));
    assert.equal(refused.headers['x-frame-options'], 'DENY');
    assert.equal(refused.headers['content-length'], '7', 'the framing is the backend\'s');
  });

  it('moves an upgrade whose pinned backend died to another backend, and the 101 pins the new one', async () => {
    const first = await upgrade('/live');
    const cookie = cookiePair(setCookieLine(first.headers, 'pin')!);
    const pinned = backends.find((b) => b.name === first.backend)!;
    await pinned.close();
    // Still announced in etcd: the router finds it dead by the refused connection, on each worker.
    const moved = await upgrade('/live', { cookie });
    assert.equal(moved.status, 101);
    assert.notEqual(moved.backend, pinned.name);
    const renewed = setCookieLine(moved.headers, 'pin');
    assert.ok(renewed !== null && cookiePair(renewed) !== cookie, 'the 101 pins the new backend');
    assert.ok(renewed.startsWith(`pin=${backends.find((b) => b.name === moved.backend)!.address}~`));
    for (let i = 0; i < 10; i++) {
      const reply = await upgrade('/live', { cookie: cookiePair(renewed), tls: i % 2 === 1 });
      assert.equal(reply.status, 101);
      assert.equal(reply.backend, moved.backend, 'the new pin holds on every worker');
      assert.equal(reply.headers['set-cookie'], undefined);
    }
    // The old cookie keeps moving its holder (on a worker that had not seen the dead backend yet, too).
    for (let i = 0; i < 6; i++) {
      const again = await upgrade('/live', { cookie });
      assert.equal(again.status, 101);
      assert.notEqual(again.backend, pinned.name);
      assert.notEqual(setCookieLine(again.headers, 'pin'), null);
    }
  });
});
