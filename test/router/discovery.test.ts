// Discovery: what app teams announce in etcd is what the router routes, and
// quickly — written with Debian's etcdctl, a client nobody here wrote.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';

describe('discovery from etcd', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let a: TestBackend;
  let b: TestBackend;

  before(async () => {
    etcd = await EtcdServer.start();
    [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    // Present before the router starts: the initial snapshot must load it.
    await etcd.put('/services/preloaded/@1', a.address);
    router = await startRouter({ etcd: etcd.endpoint, workers: 2 });
  });

  after(async () => {
    await router?.stop();
    await Promise.all([a?.close(), b?.close()]);
    await etcd?.close();
  });

  it('serves keys that existed before the router started', async () => {
    const reply = await get(router.httpPort, 'preloaded.test');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'a\n');
  });

  it('routes a backend put with etcdctl --lease within 100 ms and drops it within 100 ms of lease revoke', async () => {
    const lease = await etcd.grantLease(30);
    await etcd.put('/services/leased/@1', b.address, lease);
    const putAt = Date.now();
    await waitFor(async () => (await get(router.httpPort, 'leased.test')).status === 200, { timeout: 2000, interval: 5, what: 'leased backend routed' });
    const routedIn = Date.now() - putAt;
    assert.ok(routedIn <= 100, `routed after ${routedIn} ms`);

    await etcd.etcdctl('lease', 'revoke', lease);
    const revokedAt = Date.now();
    await waitFor(async () => (await get(router.httpPort, 'leased.test')).status === 503, { timeout: 2000, interval: 5, what: 'leased backend gone' });
    const goneIn = Date.now() - revokedAt;
    assert.ok(goneIn <= 100, `still routed ${goneIn} ms after revoke`);
  });

  it('answers 404 for an unknown host and 503 for a known service without a live backend', async () => {
    assert.equal((await get(router.httpPort, 'nobody.test')).status, 404);
    assert.equal((await get(router.httpPort, 'not-a-domain.example')).status, 404);
    await etcd.put('/services/short-lived/@1', a.address);
    await waitFor(async () => (await get(router.httpPort, 'short-lived.test')).status === 200, { what: 'short-lived routed' });
    await etcd.del('/services/short-lived/@1');
    await waitFor(async () => (await get(router.httpPort, 'short-lived.test')).status === 503, { what: 'short-lived 503' });
  });

  it('applies every key of one etcd transaction (etcdctl del --prefix removes all instances at one revision)', async () => {
    for (let i = 1; i <= 3; i++) await etcd.put(`/services/batch/@${i}`, a.address);
    await waitFor(async () => (await router.routes()).services.batch?.length === 3, { what: 'three batch instances' });
    await etcd.etcdctl('del', '--prefix', '/services/batch/');
    await waitFor(async () => (await get(router.httpPort, 'batch.test')).status === 503, { what: 'batch service without instances' });
    assert.deepEqual((await router.routes()).services.batch, []);
  });

  it('accepts the JSON backend form with a weight', async () => {
    await etcd.put('/services/json/@1', JSON.stringify({ host: '127.0.0.1', port: b.port, weight: 3 }));
    await waitFor(async () => (await get(router.httpPort, 'json.test')).body === 'b\n', { what: 'json backend routed' });
    const routes = await router.routes();
    assert.deepEqual(routes.services.json, [{ instance: '@1', address: b.address, weight: 3 }]);
  });

  it('skips a malformed value with a warning naming the key, keeping the last good value', async () => {
    await etcd.put('/services/garbage/@1', a.address);
    await waitFor(async () => (await get(router.httpPort, 'garbage.test')).status === 200, { what: 'garbage service routed' });
    await etcd.put('/services/garbage/@1', 'not an address');
    await etcd.put('/services/garbage/@2', '{"host": 1}');
    await waitFor(() => router.logs().filter((l) => l.key === '/services/garbage/@2' && l.level === 'warn').length > 0, { what: 'warning naming the key' });
    const warning = router.logs().find((l) => l.key === '/services/garbage/@1' && l.level === 'warn');
    assert.ok(warning, 'a warning names /services/garbage/@1');
    const reply = await get(router.httpPort, 'garbage.test');
    assert.equal(reply.status, 200);
    assert.equal(reply.body, 'a\n');
    assert.equal((await router.health()).status, 200, 'the router is still healthy');
  });

  it('routes by host and longest path prefix from rules under /routes/', async () => {
    await etcd.put('/services/web/@1', a.address);
    await etcd.put('/services/api/@1', b.address);
    await etcd.put('/routes/site', JSON.stringify({ hosts: ['www.example.com', '*.example.org'], service: 'web' }));
    await etcd.put('/routes/site-api', JSON.stringify({ hosts: ['www.example.com'], paths: ['/api'], service: 'api' }));
    await waitFor(async () => (await get(router.httpPort, 'www.example.com', '/api/x')).body === 'b\n', { what: 'api rule' });
    assert.equal((await get(router.httpPort, 'www.example.com', '/')).body, 'a\n');
    assert.equal((await get(router.httpPort, 'www.example.com', '/apix')).body, 'a\n', '/apix is not under /api');
    assert.equal((await get(router.httpPort, 'www.example.com', '/api?q=1')).body, 'b\n');
    assert.equal((await get(router.httpPort, 'WWW.Example.COM.:80', '/api')).body, 'b\n', 'host is case-insensitive, port and trailing dot ignored');
    assert.equal((await get(router.httpPort, 'shop.example.org', '/')).body, 'a\n', 'wildcard host');
    assert.equal((await get(router.httpPort, 'example.org', '/')).status, 404, 'wildcard does not match the bare domain');
    await etcd.del('/routes/site-api');
    await waitFor(async () => (await get(router.httpPort, 'www.example.com', '/api/x')).body === 'a\n', { what: 'api rule removed' });
  });

  it('refuses an invalid route rule and keeps the previous one', async () => {
    await etcd.put('/routes/keep', JSON.stringify({ hosts: ['keep.example.com'], service: 'web' }));
    await waitFor(async () => (await get(router.httpPort, 'keep.example.com')).status === 200, { what: 'keep rule' });
    await etcd.put('/routes/keep', JSON.stringify({ hosts: ['keep.example.com'], service: 'web', balance: 'fastest' }));
    await waitFor(() => router.logs().some((l) => l.key === '/routes/keep' && l.level === 'warn'), { what: 'rule warning' });
    assert.equal((await get(router.httpPort, 'keep.example.com')).status, 200);
  });
});
