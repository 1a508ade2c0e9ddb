// Sticky sessions (`"sticky"` in a route rule): a signed cookie pins a client to
// a backend on every worker of every router sharing etcd, over HTTP/1.1 and
// HTTP/2; a forged cookie is ignored; a pinned backend that dies is replaced.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session } from 'node:http2';
import { readFile } from 'node:fs/promises';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { h2Get } from '../helpers/http2-client.ts';
import { get, type Reply } from '../helpers/http.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';

/** The `name=value` of a Set-Cookie for `name`, or null. */
function cookieOf(setCookie: string | string[] | undefined, name: string): string | null {
  for (const line of [setCookie ?? []].flat()) {
    const pair = line.split(';')[0];
    if (pair.startsWith(`${name}=`)) return pair;
  }
  return null;
}

describe('sticky sessions', () => {
  let etcd: EtcdServer;
  let one: RouterProcess;
  let two: RouterProcess;
  let session: ClientHttp2Session;
  const backends: TestBackend[] = [];

  before(async () => {
    const certs = await TestCertificates.create();
    const cert = await certs.issue('sticky.test', ['sticky.test']);
    etcd = await EtcdServer.start();
    for (const name of ['a', 'b', 'c']) {
      const b = await startBackend(name);
      backends.push(b);
      await etcd.put(`/services/app/${name}`, b.address);
    }
    await etcd.put('/tls/sticky', cert.etcdValue);
    await etcd.put('/routes/sticky', JSON.stringify({ hosts: ['sticky.test'], service: 'app', sticky: { cookie: 'pin', ttl: '30m' } }));
    // Two routers sharing etcd, two workers each; --max-fails 1 so a dead backend is ejected at once.
    [one, two] = await Promise.all([
      startRouter({ etcd: etcd.endpoint, workers: 2, https: true, args: ['--max-fails', '1'] }),
      startRouter({ etcd: etcd.endpoint, workers: 2, args: ['--max-fails', '1'] }),
    ]);
    session = connect(`https://127.0.0.1:${one.httpsPort}`, { ca: await readFile(certs.caFile), servername: 'sticky.test' });
    session.on('error', () => {});
    // Both routers have the cluster key: each sets a cookie.
    for (const router of [one, two]) {
      await waitFor(async () => cookieOf((await get(router.httpPort, 'sticky.test')).headers['set-cookie'], 'pin') !== null, { timeout: 10_000, what: 'a sticky cookie' });
    }
  });

  after(async () => {
    session?.close();
    await Promise.all([one?.stop(), two?.stop()]);
    await Promise.all(backends.map((b) => b.close()));
    await etcd?.close();
  });

  it('pins a client to one backend across workers, routers and HTTP/1.1 and HTTP/2, with one cluster key in etcd', async () => {
    const first = await get(one.httpPort, 'sticky.test');
    const setCookie = [first.headers['set-cookie'] ?? []].flat().find((l) => l.startsWith('pin='))!;
    assert.match(setCookie, /^pin=127\.0\.0\.1:\d+~[A-Za-z0-9_-]{22}; Max-Age=1800; Path=\/; HttpOnly; SameSite=Lax$/);
    const cookie = cookieOf(setCookie, 'pin')!;
    const replies: Reply[] = [];
    for (let i = 0; i < 20; i++) {
      // Fresh connections: the kernel spreads them over both workers of each router.
      replies.push(await get(one.httpPort, 'sticky.test', '/', { headers: { cookie: `other=1; ${cookie}` } }));
      replies.push(await get(two.httpPort, 'sticky.test', '/', { headers: { cookie } }));
    }
    const h2 = [];
    for (let i = 0; i < 10; i++) h2.push(await h2Get(session, 'sticky.test', '/', { cookie }));
    assert.deepEqual(new Set([...replies, ...h2].map((r) => r.body)), new Set([first.body]), 'every request reached the pinned backend');
    // A pinned request gets no new cookie.
    assert.equal(replies.filter((r) => r.headers['set-cookie'] !== undefined).length, 0);
    assert.equal(h2.filter((r) => r.headers['set-cookie'] !== undefined).length, 0);
    // Without the cookie the same router balances as usual.
    const free = new Set<string>();
    for (let i = 0; i < 9; i++) free.add((await get(one.httpPort, 'sticky.test')).body);
    assert.ok(free.size > 1, 'requests without the cookie are balanced');
    const key = await etcd.etcdctl('get', '--print-value-only', '/cluster/sticky-key');
    assert.ok(Buffer.from(key, 'base64').length >= 32);
  });

  it('ignores a cookie with a forged signature and pins again', async () => {
    const first = await get(one.httpPort, 'sticky.test');
    const cookie = cookieOf(first.headers['set-cookie'], 'pin')!;
    const [name, value] = cookie.split('=');
    const [address] = value.split('~');
    const other = backends.find((b) => b.address !== address)!;
    const forged = `${name}=${other.address}~${'A'.repeat(22)}`;
    const seen = new Set<string>();
    for (let i = 0; i < 9; i++) {
      const reply = await get(one.httpPort, 'sticky.test', '/', { headers: { cookie: forged } });
      seen.add(reply.body);
      assert.notEqual(cookieOf(reply.headers['set-cookie'], 'pin'), null, 'a forged cookie is replaced');
    }
    assert.ok(seen.size > 1, 'a forged cookie pins nothing');
  });

  it('moves a client whose backend dies to another one, with a new cookie that sticks', async () => {
    const first = await get(two.httpPort, 'sticky.test');
    const cookie = cookieOf(first.headers['set-cookie'], 'pin')!;
    const pinned = backends.find((b) => `${b.name}\n` === first.body)!;
    await pinned.close();
    const moved = await get(two.httpPort, 'sticky.test', '/', { headers: { cookie } });
    assert.equal(moved.status, 200);
    assert.notEqual(moved.body, first.body);
    const renewed = cookieOf(moved.headers['set-cookie'], 'pin');
    assert.ok(renewed !== null && renewed !== cookie, 'the response pins the new backend');
    for (const port of [one.httpPort, two.httpPort]) {
      for (let i = 0; i < 6; i++) {
        const reply = await get(port, 'sticky.test', '/', { headers: { cookie: renewed } });
        assert.equal(reply.status, 200);
        assert.equal(reply.body, moved.body);
      }
    }
    // The old cookie now moves its holder on any router (the dead backend is ejected or refused).
    const again = await get(one.httpPort, 'sticky.test', '/', { headers: { cookie } });
    assert.equal(again.status, 200);
    assert.notEqual(again.body, first.body);
  });
});
