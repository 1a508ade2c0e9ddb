// WebSockets through the router, with Node's built-in WebSocket client on
// both listeners: echo, round-robin, untouched by other services' route changes
// and by HTTP timeouts, drained then closed cleanly when their backend is
// removed; refused, failed and abandoned upgrades leave no socket open.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { getCACertificates, setDefaultCACertificates } from 'node:tls';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get, rawExchange } from '../helpers/http.ts';
import { scrape, valueOf } from '../helpers/metrics.ts';
import { freePort } from '../helpers/ports.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { startWebSocketBackend, type WebSocketBackend } from '../helpers/websocket-backend.ts';

interface OpenSocket {
  readonly ws: WebSocket;
  /** Sends a text message and resolves with the next message received. */
  echo(text: string): Promise<string>;
  readonly closed: Promise<CloseEvent>;
}

function openWebSocket(url: string): Promise<OpenSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    const waiting: ((text: string) => void)[] = [];
    ws.onmessage = (event) => waiting.shift()?.(String(event.data));
    const closed = new Promise<CloseEvent>((done) => ws.addEventListener('close', (event) => done(event)));
    ws.onopen = () => resolve({
      ws,
      closed,
      echo: (text) => new Promise((done, fail) => {
        waiting.push(done);
        ws.send(text);
        setTimeout(() => fail(new Error(`no echo for ${text}`)), 3000).unref();
      }),
    });
    ws.onerror = () => reject(new Error(`WebSocket ${url} failed`));
  });
}

const upgradeRequest = (path: string, host = '127.0.0.1') =>
  `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

describe('WebSockets', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let certs: TestCertificates;
  let chatA: WebSocketBackend;
  let chatB: WebSocketBackend;
  let drain: WebSocketBackend;
  let refuser: WebSocketBackend;
  let silent: WebSocketBackend;
  let plain: TestBackend;
  const opened: OpenSocket[] = [];
  const ws = (path: string) => `ws://127.0.0.1:${router.httpPort}${path}`;
  const wss = (path: string) => `wss://127.0.0.1:${router.httpsPort}${path}`;

  async function open(url: string): Promise<OpenSocket> {
    const socket = await openWebSocket(url);
    opened.push(socket);
    return socket;
  }

  before(async () => {
    certs = await TestCertificates.create();
    const cert = await certs.issue('tug ws', [], { ips: ['127.0.0.1'] });
    setDefaultCACertificates([...getCACertificates('default'), readFileSync(certs.caFile, 'utf8')]);
    etcd = await EtcdServer.start();
    [chatA, chatB, drain, refuser, silent] = await Promise.all([
      startWebSocketBackend('chat-a'), startWebSocketBackend('chat-b'), startWebSocketBackend('drain'),
      startWebSocketBackend('refuser', { refuseWith: 403 }), startWebSocketBackend('silent', { silent: true }),
    ]);
    plain = await startBackend('plain');
    await etcd.put('/services/chat/@1', chatA.address);
    await etcd.put('/services/chat/@2', chatB.address);
    await etcd.put('/services/drain/@1', drain.address);
    await etcd.put('/services/refuser/@1', refuser.address);
    await etcd.put('/services/silent/@1', silent.address);
    await etcd.put('/services/plain/@1', plain.address);
    await etcd.put('/services/dead/@1', `127.0.0.1:${await freePort()}`);
    for (const name of ['chat', 'drain', 'refuser', 'silent', 'plain', 'dead']) {
      await etcd.put(`/routes/${name}`, JSON.stringify({ paths: [`/${name}`], service: name }));
    }
    router = await startRouter({
      etcd: etcd.endpoint,
      https: true,
      args: [
        '--cert', cert.certFile, '--key', cert.keyFile, '--websocket-drain', '1s', '--response-timeout', '500ms',
        '--client-idle-timeout', '1s', '--keep-alive-timeout', '1s', '--client-header-timeout', '1s',
      ],
    });
  });

  after(async () => {
    for (const socket of opened) socket.ws.close();
    await router?.stop();
    await Promise.all([chatA, chatB, drain, refuser, silent, plain].map((b) => b?.close()));
    await etcd?.close();
    await certs?.close();
  });

  it('echoes through the router on the HTTP and the HTTPS listener, with the forwarding headers', async () => {
    const overHttp = await open(ws('/chat/room?x=1'));
    assert.match(await overHttp.echo('hello'), /^chat-[ab]: hello$/);
    const overHttps = await open(wss('/chat/room'));
    assert.match(await overHttps.echo('secure hello'), /^chat-[ab]: secure hello$/);
    const upgrades = [...chatA.upgrades, ...chatB.upgrades];
    const secure = upgrades.find((r) => r.headers['x-forwarded-proto'] === 'https');
    assert.ok(secure, 'the backend saw X-Forwarded-Proto: https');
    assert.equal(secure.url, '/chat/room');
    assert.equal(secure.headers['x-forwarded-for'], '127.0.0.1');
    assert.equal(secure.headers.host, `127.0.0.1:${router.httpsPort}`);
    assert.ok(secure.headers['x-request-id']);
    assert.ok(upgrades.some((r) => r.url === '/chat/room?x=1' && r.headers['x-forwarded-proto'] === 'http'));
  });

  it('spreads WebSockets round-robin over the service\'s backends', async () => {
    const before = [chatA.open.size, chatB.open.size];
    for (let i = 0; i < 4; i++) await open(ws('/chat'));
    assert.equal(chatA.open.size - before[0], 2);
    assert.equal(chatB.open.size - before[1], 2);
  });

  it('keeps a WebSocket open while other services\' routes and backends change, and past every HTTP timeout', async () => {
    const socket = await open(ws('/chat/long'));
    const secure = await open(wss('/chat/long'));
    const other = await startBackend('other');
    try {
      for (let i = 0; i < 20; i++) {
        await etcd.put(`/services/lobby/@${i}`, other.address);
        await etcd.put(`/routes/lobby-${i}`, JSON.stringify({ hosts: [`lobby-${i}.example.com`], service: 'lobby' }));
        await etcd.put('/tls/lobby', JSON.stringify({ cert: 'x', key: 'y' }));
        if (i % 2 === 0) await etcd.del(`/routes/lobby-${i}`);
      }
      await etcd.etcdctl('del', '--prefix', '/services/lobby/');
      await waitFor(async () => (await get(router.httpPort, 'lobby-1.example.com')).status === 503, { what: 'lobby changes applied' });
      await sleep(2500); // more than --client-idle-timeout, --keep-alive-timeout and --client-header-timeout
      assert.equal(socket.ws.readyState, WebSocket.OPEN);
      assert.match(await socket.echo('still here'), /: still here$/);
      assert.match(await secure.echo('still secure'), /: still secure$/);
    } finally {
      await other.close();
    }
  });

  it('drains the WebSockets of a removed backend, then closes them cleanly with 1001', async () => {
    const socket = await open(ws('/drain'));
    assert.equal(await socket.echo('before'), 'drain: before');
    await etcd.del('/services/drain/@1');
    const removedAt = Date.now();
    await waitFor(async () => (await get(router.httpPort, 'anything', '/drain')).status === 503, { what: 'drain backend removed' });
    assert.equal(await socket.echo('draining'), 'drain: draining', 'still open while draining');
    const event = await socket.closed;
    const after = Date.now() - removedAt;
    assert.equal(event.code, 1001);
    assert.equal(event.wasClean, true);
    assert.equal(event.reason, 'backend removed');
    assert.ok(after >= 900 && after < 4000, `closed ${after} ms after removal (--websocket-drain 1s)`);
    await waitFor(() => drain.sockets.size === 0, { what: 'backend connection closed' });
  });

  it('closes cleanly when the app itself closes the WebSocket', async () => {
    await etcd.put('/services/drain/@1', drain.address);
    await waitFor(async () => (await get(router.httpPort, 'anything', '/drain')).status === 426, { what: 'drain back' });
    const socket = await open(wss('/drain'));
    assert.equal(await socket.echo('x'), 'drain: x');
    drain.closeAll();
    const event = await socket.closed;
    assert.equal(event.code, 1000);
    assert.equal(event.wasClean, true);
    // The router's side closed at once too (its access-log line is written when the tunnel closes).
    await waitFor(() => router.logs().some((l) => l.websocket === true && l.path === '/drain' && (l.ms as number) < 1000), { timeout: 2000, what: 'the router closed its side at once' });
  });

  it('relays a refused upgrade and leaves no socket open on either side', async () => {
    const reply = await rawExchange(router.httpPort, upgradeRequest('/refuser'));
    assert.match(reply.text, /^HTTP\/1\.1 403 /);
    assert.match(reply.text, /refused$/);
    assert.equal(reply.closed, true, 'the router closed the client connection');
    await waitFor(() => refuser.sockets.size === 0, { what: 'no upstream socket left' });
    await assert.rejects(openWebSocket(ws('/refuser')));
  });

  it('answers 502 for a dead upstream and 504 for a silent one, leaving no socket open', async () => {
    const dead = await rawExchange(router.httpPort, upgradeRequest('/dead'));
    assert.match(dead.text, /^HTTP\/1\.1 502 /);
    assert.equal(dead.closed, true);
    const started = Date.now();
    const hung = await rawExchange(router.httpPort, upgradeRequest('/silent'), 5000);
    assert.match(hung.text, /^HTTP\/1\.1 504 /);
    assert.equal(hung.closed, true);
    assert.ok(Date.now() - started < 3000);
    await waitFor(() => silent.sockets.size === 0, { what: 'no upstream socket left after 504' });
    assert.match((await rawExchange(router.httpPort, upgradeRequest('/nowhere'))).text, /^HTTP\/1\.1 404 /);
  });

  it('closes the upstream socket when the client leaves during the handshake', async () => {
    const before = silent.upgrades.length;
    const { connect } = await import('node:net');
    const client = connect(router.httpPort, '127.0.0.1');
    client.on('error', () => {});
    client.write(upgradeRequest('/silent'));
    await waitFor(() => silent.upgrades.length > before, { what: 'upgrade reached the backend' });
    client.destroy();
    await waitFor(() => silent.sockets.size === 0, { what: 'upstream socket closed' });
  });

  it('serves Upgrade: h2c and other non-WebSocket upgrades as plain HTTP', async () => {
    const reply = await rawExchange(router.httpPort, 'GET /plain HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n', 1000);
    assert.match(reply.text, /^HTTP\/1\.1 200 /);
    assert.match(reply.text, /plain\n$/);
    const seen = plain.requests.at(-1)!;
    assert.equal(seen.headers.upgrade, undefined);
    assert.equal(seen.headers['http2-settings'], undefined);
  });

  it('closes WebSockets with 1001 when the router is stopped (SIGTERM), and exits 0', async () => {
    const second = await startRouter({ etcd: etcd.endpoint, args: ['--https', 'off'] });
    try {
      const socket = await openWebSocket(`ws://127.0.0.1:${second.httpPort}/chat`);
      assert.match(await socket.echo('bye'), /: bye$/);
      second.child.kill('SIGTERM');
      const event = await socket.closed;
      assert.equal(event.code, 1001);
      assert.equal(event.reason, 'router shutting down');
      assert.equal(event.wasClean, true);
      assert.equal(await second.exited, 0);
    } finally {
      await second.stop('SIGKILL');
    }
  });

  it('counts open WebSockets in /metrics and leaves none behind', async () => {
    const socket = await open(ws('/chat/metrics'));
    const during = await scrape(router.adminPort);
    assert.ok((valueOf(during.samples, 'tug_active_websockets') ?? 0) >= 1);
    for (const s of opened) s.ws.close();
    await socket.closed;
    await waitFor(async () => valueOf((await scrape(router.adminPort)).samples, 'tug_active_websockets') === 0, { what: 'no WebSocket left open in the router' });
    await waitFor(() => chatA.open.size + chatB.open.size + drain.open.size === 0, { what: 'no backend WebSocket left open' });
    // Every client connection of every test above, refused and failed upgrades included, is closed.
    await waitFor(async () => {
      const { samples } = await scrape(router.adminPort);
      return valueOf(samples, 'tug_active_connections', { listener: 'http' }) === 0 && valueOf(samples, 'tug_active_connections', { listener: 'https' }) === 0;
    }, { what: 'no client connection left open in the router' });
  });
});
