// `tug announce` against a real etcd and a real router: announced while the app
// is healthy, withdrawn when it is not or on SIGTERM, registered again after
// etcd loses the key.
import { after, afterEach, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AnnouncerProcess } from '../helpers/announcer.ts';
import { startBackend, TestBackend } from '../helpers/backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';
import { resolveAnnounceConfig } from '../../deployer/announce-config.ts';

describe('tug announce', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let announcer: AnnouncerProcess | undefined;
  let app: TestBackend;

  before(async () => {
    etcd = await EtcdServer.start();
    router = await startRouter({ etcd: etcd.endpoint });
  });
  after(async () => {
    await router?.stop();
    await etcd?.close();
  });
  afterEach(async () => {
    await announcer?.stop('SIGKILL');
    announcer = undefined;
    await app?.close();
  });

  const announce = (service: string, extra: string[] = []) => new AnnouncerProcess([
    '--etcd', etcd.endpoint, '--service', service, '--instance', '@1', '--address', app.address,
    '--ttl', '3', '--health-interval', '300ms', '--health-timeout', '200ms', ...extra,
  ]);
  const routed = async (host: string) => (await get(router.httpPort, host)).status === 200;

  it('announces a healthy instance on a lease, and the router routes it', async () => {
    app = await startBackend('app');
    announcer = announce('hello', ['--health', `http://${app.address}/healthz`]);
    await waitFor(() => routed('hello.test'), { timeout: 5000, what: 'instance routed' });
    assert.equal(await etcd.etcdctl('get', '--print-value-only', '/services/hello/@1'), app.address);
    const lease = JSON.parse(await etcd.etcdctl('get', '-w', 'json', '/services/hello/@1')).kvs[0].lease as number;
    assert.ok(lease > 0, 'the key is attached to a lease');
  });

  it('withdraws within one health interval when the app dies, and announces again when it is back', async () => {
    app = await startBackend('app');
    const port = app.port;
    announcer = announce('flaky');
    await waitFor(() => routed('flaky.test'), { timeout: 5000, what: 'instance routed' });
    await app.close();
    const killedAt = Date.now();
    await waitFor(async () => (await etcd.etcdctl('get', '--keys-only', '/services/flaky/@1')) === '', { timeout: 3000, interval: 20, what: 'key withdrawn' });
    const took = Date.now() - killedAt;
    assert.ok(took < 300 + 200 + 250, `withdrawn ${took} ms after the app died (interval 300 ms)`);
    app = await new TestBackend('app-again').listen(port);
    await waitFor(async () => (await get(router.httpPort, 'flaky.test')).body === 'app-again\n', { timeout: 5000, what: 'announced again' });
  });

  it('withdraws the key at once on SIGTERM', async () => {
    app = await startBackend('app');
    announcer = announce('bye');
    await waitFor(() => routed('bye.test'), { timeout: 5000, what: 'instance routed' });
    assert.equal(await announcer.stop('SIGTERM'), 0);
    assert.equal(await etcd.etcdctl('get', '--keys-only', '/services/bye/@1'), '', 'the key is gone when the process has exited');
  });

  it('registers again when etcd comes back without the key (wiped)', async () => {
    app = await startBackend('app');
    announcer = announce('phoenix');
    await waitFor(() => routed('phoenix.test'), { timeout: 5000, what: 'instance routed' });
    await etcd.wipe();
    await waitFor(async () => (await etcd.etcdctl('get', '--print-value-only', '/services/phoenix/@1')) === app.address, { timeout: 10_000, what: 're-registered in the wiped etcd' });
    await waitFor(() => routed('phoenix.test'), { timeout: 5000, what: 'routed again' });
    assert.ok(announcer.logs().some((l) => l.msg === 'registration lost; registering again' || l.msg === 'lease lost; registering again'));
  });

  it('keeps the instance announced across an etcd restart longer than the lease TTL', async () => {
    app = await startBackend('app');
    announcer = announce('survivor');
    await waitFor(() => routed('survivor.test'), { timeout: 5000, what: 'instance routed' });
    await etcd.stop();
    await new Promise((r) => setTimeout(r, 4000));
    await etcd.resume();
    await waitFor(async () => (await etcd.etcdctl('get', '--print-value-only', '/services/survivor/@1')) === app.address, { timeout: 10_000, what: 'announced after the restart' });
    // Still there after two more TTLs: the lease is being kept alive again, not merely restored.
    await new Promise((r) => setTimeout(r, 6500));
    assert.equal(await etcd.etcdctl('get', '--print-value-only', '/services/survivor/@1'), app.address);
    await waitFor(() => routed('survivor.test'), { timeout: 5000, what: 'routed after the restart' });
  });

  it('takes the host from COREOS_PRIVATE_IPV4 when --address is :PORT', () => {
    const config = resolveAnnounceConfig({ service: 's', instance: '@2', address: ':3000' }, { COREOS_PRIVATE_IPV4: '10.1.2.3' });
    assert.equal(config.host, '10.1.2.3');
    assert.equal(config.port, 3000);
    assert.equal(config.health.href, 'tcp://10.1.2.3:3000');
    assert.throws(() => resolveAnnounceConfig({ service: 's', instance: '@2', address: ':3000' }, {}), /COREOS_PRIVATE_IPV4/);
  });
});
