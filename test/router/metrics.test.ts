// /metrics on the admin listener: Prometheus text that Debian's promtool
// accepts, counting what the workers did (summed over workers, monotonic when
// a worker dies), etcd sync state and certificates with their expiry.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates, type IssuedCertificate } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { promtool, scrape, valueOf, type Sample } from '../helpers/metrics.ts';
import { freePort } from '../helpers/ports.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';
import { ServiceMetrics } from '../../router/metrics/service-metrics.ts';
import { Backend } from '../../router/table/backend.ts';

describe('Prometheus metrics', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let certs: TestCertificates;
  let site: IssuedCertificate;
  let a: TestBackend;
  let b: TestBackend;
  let deadAddress: string;

  before(async () => {
    certs = await TestCertificates.create();
    site = await certs.issue('shop.example.com', ['shop.example.com', '*.shop.example.com']);
    etcd = await EtcdServer.start();
    [a, b] = await Promise.all([startBackend('a'), startBackend('b')]);
    deadAddress = `127.0.0.1:${await freePort()}`;
    await etcd.put('/services/shop/@1', a.address);
    await etcd.put('/services/shop/@2', b.address);
    await etcd.put('/services/flaky/@1', deadAddress);
    await etcd.put('/tls/shop', site.etcdValue);
    router = await startRouter({ etcd: etcd.endpoint, workers: 2, https: true, args: ['--max-fails', '1', '--eject-time', '30s', '--eject-max', '30s'] });
    // A service known to the router that lost its last instance.
    await etcd.put('/services/empty/@1', a.address);
    await waitFor(async () => (await get(router.httpPort, 'empty.test')).status === 200, { what: 'empty routed' });
    await etcd.del('/services/empty/@1');
    await waitFor(async () => (await get(router.httpPort, 'empty.test')).status === 503, { what: 'empty 503' });
  });

  after(async () => {
    await router?.stop();
    await Promise.all([a?.close(), b?.close()]);
    await etcd?.close();
    await certs?.close();
  });

  it('passes promtool check metrics', async () => {
    // Two instances on one address are one backend: one series, not a duplicate.
    await etcd.put('/services/shop/@3', a.address);
    await waitFor(async () => (await router.routes()).services.shop.length === 3, { what: 'third shop instance' });
    for (let i = 0; i < 5; i++) await get(router.httpPort, 'shop.test');
    await get(router.httpPort, 'flaky.test');
    const { text } = await scrape(router.adminPort);
    const result = await promtool(text);
    assert.equal(result.code, 0, `promtool check metrics:\n${result.output}\n---\n${text}`);
    assert.equal(result.output.trim(), '', 'no lint findings');
  });

  it('counts requests by service, backend and status class over every worker, with a latency histogram', async () => {
    const before = (await scrape(router.adminPort)).samples;
    const count = (samples: Sample[], backend: string, codeClass: string) => valueOf(samples, 'tug_requests_total', { service: 'shop', backend, code_class: codeClass }) ?? 0;
    const histogramCount = (samples: Sample[]) => valueOf(samples, 'tug_request_duration_seconds_count', { service: 'shop' }) ?? 0;
    const n = 40;
    for (let i = 0; i < n; i++) assert.equal((await get(router.httpPort, 'shop.test')).status, 200);
    const after = (await scrape(router.adminPort)).samples;
    const served = count(after, a.address, '2xx') - count(before, a.address, '2xx') + count(after, b.address, '2xx') - count(before, b.address, '2xx');
    assert.equal(served, n);
    assert.ok(count(after, a.address, '2xx') - count(before, a.address, '2xx') >= n / 4, 'both backends counted');
    assert.equal(histogramCount(after) - histogramCount(before), n);
    assert.equal(valueOf(after, 'tug_request_duration_seconds_bucket', { service: 'shop', le: '+Inf' }), histogramCount(after));
    const fast = valueOf(after, 'tug_request_duration_seconds_bucket', { service: 'shop', le: '1' }) ?? 0;
    assert.ok(fast >= n, 'local requests fall in the 1 s bucket');
    // Both workers answered (connections without keep-alive are spread by the kernel).
    assert.equal(valueOf(after, 'tug_workers', { state: 'listening' }), 2);
  });

  it('counts unrouted requests, 503s, and failing backends with their ejection', async () => {
    const before = (await scrape(router.adminPort)).samples;
    assert.equal((await get(router.httpPort, 'nobody.example')).status, 404);
    assert.equal((await get(router.httpPort, 'empty.test')).status, 503);
    const after = (await scrape(router.adminPort)).samples;
    assert.equal((valueOf(after, 'tug_unrouted_requests_total', { code: '404' }) ?? 0) - (valueOf(before, 'tug_unrouted_requests_total', { code: '404' }) ?? 0), 1);
    assert.ok((valueOf(after, 'tug_requests_total', { service: 'empty', backend: '', code_class: '5xx' }) ?? 0) >= 1);
    assert.ok((valueOf(after, 'tug_requests_total', { service: 'flaky', backend: deadAddress, code_class: '5xx' }) ?? 0) >= 1);
    assert.equal(valueOf(after, 'tug_backend_ejected', { service: 'flaky', backend: deadAddress }), 1);
    assert.ok((valueOf(after, 'tug_backend_ejections_total', { service: 'flaky', backend: deadAddress }) ?? 0) >= 1);
    assert.equal(valueOf(after, 'tug_backend_ejected', { service: 'shop', backend: a.address }), 0);
    assert.equal(valueOf(after, 'tug_service_backends', { service: 'shop' }), 2);
    assert.equal(valueOf(after, 'tug_service_backends', { service: 'empty' }), 0);
  });

  it('shows open connections per listener', async () => {
    const { connect } = await import('node:net');
    const socket = connect(router.httpPort, '127.0.0.1');
    socket.on('error', () => {});
    try {
      await new Promise((resolve) => socket.once('connect', resolve));
      await waitFor(async () => (valueOf((await scrape(router.adminPort)).samples, 'tug_active_connections', { listener: 'http' }) ?? 0) >= 1, { what: 'one open HTTP connection' });
    } finally {
      socket.destroy();
    }
    await waitFor(async () => valueOf((await scrape(router.adminPort)).samples, 'tug_active_connections', { listener: 'http' }) === 0, { what: 'connection gone' });
  });

  it('shows etcd sync state: connected, last revision, seconds stale', async () => {
    // The revision of the last change to the table (etcd's own moves on with each router's /routers/ record).
    const put = JSON.parse(await etcd.etcdctl('put', '-w', 'json', '/services/revision-probe/@1', a.address)) as { header: { revision: number } };
    let samples = await waitFor(async () => {
      const s = (await scrape(router.adminPort)).samples;
      return valueOf(s, 'tug_etcd_revision') === put.header.revision ? s : null;
    }, { what: 'the revision of the last put applied' });
    assert.equal(valueOf(samples, 'tug_etcd_connected'), 1);
    assert.equal(valueOf(samples, 'tug_etcd_synced'), 1);
    assert.ok((valueOf(samples, 'tug_etcd_seconds_since_contact') ?? Infinity) < 3);
    await etcd.stop();
    try {
      samples = await waitFor(async () => {
        const s = (await scrape(router.adminPort)).samples;
        return valueOf(s, 'tug_etcd_connected') === 0 && (valueOf(s, 'tug_etcd_seconds_since_contact') ?? 0) >= 2 ? s : null;
      }, { timeout: 10_000, interval: 200, what: 'etcd reported down and stale' });
      assert.equal(valueOf(samples, 'tug_etcd_synced'), 1, 'still serving the last known table');
    } finally {
      await etcd.resume();
    }
    await waitFor(async () => valueOf((await scrape(router.adminPort)).samples, 'tug_etcd_connected') === 1, { timeout: 10_000, what: 'etcd back' });
  });

  it('lists loaded certificates with their expiry', async () => {
    const samples = (await scrape(router.adminPort)).samples;
    const expiry = samples.find((s) => s.name === 'tug_certificate_expiry_timestamp_seconds' && s.labels.name === 'shop');
    assert.ok(expiry, 'the etcd certificate is listed');
    assert.equal(expiry.labels.source, 'etcd');
    assert.equal(expiry.labels.hosts, 'shop.example.com,*.shop.example.com');
    assert.equal(expiry.value, Math.floor(new X509Certificate(site.cert).validToDate.getTime() / 1000));
    assert.equal(valueOf(samples, 'tug_certificates_loaded'), 1);
  });

  it('keeps counters monotonic when a worker dies', async () => {
    for (let i = 0; i < 20; i++) await get(router.httpPort, 'shop.test');
    const total = (samples: Sample[]) => samples.filter((s) => s.name === 'tug_requests_total' && s.labels.service === 'shop').reduce((sum, s) => sum + s.value, 0);
    const before = total((await scrape(router.adminPort)).samples);
    await waitFor(async () => (await router.health()).body.workers.listening === 2, { what: 'both workers listening' });
    const workers = execFileSync('pgrep', ['-P', String(router.child.pid)]).toString().trim().split('\n').map(Number);
    process.kill(workers[0], 'SIGKILL');
    await waitFor(() => router.logs().some((l) => l.msg === 'router worker died; restarting it'), { what: 'worker death noticed' });
    await waitFor(async () => (await router.health()).body.workers.listening === 2, { timeout: 10_000, what: 'worker replaced' });
    const after = total((await scrape(router.adminPort)).samples);
    assert.ok(after >= before, `requests_total went from ${before} to ${after}`);
  });

  it('tallies a million recordings exactly: status classes per backend and the latency histogram', () => {
    // What counting costs the hot path is measured in bench/ (cpu-per-request), never in a timed test.
    const metrics = new ServiceMetrics();
    const backend = new Backend('10.0.0.1', 80, { maxFails: 1, ejectBase: 1, ejectMax: 1 });
    const n = 1_000_000;
    for (let i = 0; i < n; i++) metrics.record(backend, 200 + (i % 4) * 100, (i % 1000) / 1000);
    const snapshot = metrics.snapshot('svc')!;
    assert.deepEqual(snapshot.requests, [['10.0.0.1:80', 0, n / 4, n / 4, n / 4, n / 4]]);
    assert.equal(snapshot.count, n);
    assert.equal(snapshot.buckets.reduce((a, b) => a + b, 0), n);
    // Durations 0.000..0.999 s, 1000 of each: 6 of them (0..5 ms) fall in the first bucket (le 0.005).
    assert.equal(snapshot.buckets[0], (n / 1000) * 6);
  });
});
