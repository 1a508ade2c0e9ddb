// Active health checks (`"healthCheck"` in a route rule), run by the router's
// primary: real backends whose health endpoint flips, a real router with two
// workers, requests over HTTP/1.1 and HTTP/2.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type ClientHttp2Session } from 'node:http2';
import { readFile } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { h2Get } from '../helpers/http2-client.ts';
import { get } from '../helpers/http.ts';
import { promtool, scrape, valueOf } from '../helpers/metrics.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';

const INTERVAL = 200;
const UNHEALTHY_AFTER = 2;

/** A backend whose /healthz answers 200 or 503 as `healthy` says; it counts the other requests. */
class FlippingBackend {
  healthy = true;
  checks = 0;
  served = 0;
  backend!: TestBackend;

  async start(name: string): Promise<this> {
    this.backend = await startBackend(name, (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/healthz') {
        this.checks++;
        res.writeHead(this.healthy ? 200 : 503, { 'content-length': '0' });
        res.end();
        return;
      }
      this.served++;
      res.writeHead(200, { 'content-length': String(name.length + 1) });
      res.end(`${name}\n`);
    });
    return this;
  }
}

describe('active health checks', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let session: ClientHttp2Session;
  const backends: FlippingBackend[] = [];

  async function spread(n: number): Promise<Map<string, number>> {
    const seen = new Map<string, number>();
    for (let i = 0; i < n; i++) {
      for (const reply of [await get(router.httpPort, 'health.test'), await h2Get(session, 'health.test')]) {
        assert.equal(reply.status, 200);
        seen.set(reply.body, (seen.get(reply.body) ?? 0) + 1);
      }
    }
    return seen;
  }

  before(async () => {
    const certs = await TestCertificates.create();
    const cert = await certs.issue('health.test', ['health.test']);
    etcd = await EtcdServer.start();
    for (const name of ['a', 'b', 'c']) {
      const b = await new FlippingBackend().start(name);
      backends.push(b);
      await etcd.put(`/services/checked/${name}`, b.backend.address);
    }
    await etcd.put('/tls/health', cert.etcdValue);
    await etcd.put('/routes/health', JSON.stringify({
      hosts: ['health.test'], service: 'checked',
      healthCheck: { path: '/healthz', interval: `${INTERVAL}ms`, timeout: '150ms', unhealthyAfter: UNHEALTHY_AFTER, healthyAfter: 2 },
    }));
    router = await startRouter({ etcd: etcd.endpoint, workers: 2, https: true });
    session = connect(`https://127.0.0.1:${router.httpsPort}`, { ca: await readFile(certs.caFile), servername: 'health.test' });
    session.on('error', () => {});
    await waitFor(() => backends.every((b) => b.checks > 0), { timeout: 5000, what: 'every backend checked' });
  });

  after(async () => {
    session?.close();
    await router?.stop();
    await Promise.all(backends.map((b) => b.backend.close()));
    await etcd?.close();
  });

  it('checks each backend once per interval from the primary, not once per worker', async () => {
    const start = backends.map((b) => b.checks);
    const t0 = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 10 * INTERVAL));
    const elapsed = Date.now() - t0;
    for (const [i, b] of backends.entries()) {
      const checks = b.checks - start[i];
      // Jittered down by at most 10%: at most elapsed / (0.9 × interval) + 1, whatever the worker count.
      assert.ok(checks >= 3 && checks <= Math.ceil(elapsed / (0.9 * INTERVAL)) + 1, `${checks} checks of ${b.backend.name} in ${elapsed} ms`);
    }
  });

  it('takes a backend whose health endpoint fails out of rotation within interval × unhealthyAfter, and brings it back', async () => {
    const [, b] = backends;
    b.healthy = false;
    const flipped = Date.now();
    await waitFor(async () => valueOf((await scrape(router.adminPort)).samples, 'tug_backend_healthy', { service: 'checked', backend: b.backend.address }) === 0,
      { timeout: 5000, interval: 20, what: 'b unhealthy in /metrics' });
    const took = Date.now() - flipped;
    // The bound plus one check's timeout and a loaded machine's slack.
    assert.ok(took <= INTERVAL * UNHEALTHY_AFTER + 150 + 1000, `b left after ${took} ms`);
    const routes = await router.routes();
    assert.equal(routes.health.backends[b.backend.address].healthy, false);
    assert.match(routes.health.backends[b.backend.address].lastError, /status 503/);
    // Every worker has the verdict: fresh HTTP/1.1 connections spread over both, HTTP/2 on one.
    const served = b.served;
    const seen = await spread(30);
    assert.equal(b.served, served, 'no request reached the failing backend');
    assert.deepEqual([...seen.keys()].sort(), ['a\n', 'c\n']);
    assert.match(router.output, /backend fails its health checks: out of rotation/);

    b.healthy = true;
    await waitFor(async () => {
      await get(router.httpPort, 'health.test');
      return b.served > served;
    }, { timeout: 5000, interval: 20, what: 'b back in rotation' });
    assert.match(router.output, /backend passes its health checks: back in rotation/);
  });

  it('keeps serving from every backend when all fail (fail-open), says so in the log and /metrics, and ends it', async () => {
    for (const b of backends) b.healthy = false;
    await waitFor(async () => valueOf((await scrape(router.adminPort)).samples, 'tug_service_fail_open', { service: 'checked' }) === 1,
      { timeout: 5000, interval: 20, what: 'fail-open in /metrics' });
    assert.match(router.output, /every backend of the service fails its health checks: serving from all of them \(fail-open\)/);
    assert.deepEqual((await router.routes()).health.failOpen, ['checked']);
    const seen = await spread(15);
    assert.deepEqual([...seen.keys()].sort(), ['a\n', 'b\n', 'c\n'], 'fail-open still spreads the load');
    const { text } = await scrape(router.adminPort);
    const check = await promtool(text);
    assert.equal(check.code, 0, check.output);

    for (const b of backends) b.healthy = true;
    await waitFor(async () => valueOf((await scrape(router.adminPort)).samples, 'tug_service_fail_open', { service: 'checked' }) === 0,
      { timeout: 5000, interval: 20, what: 'fail-open over' });
  });

  it('stops checking a backend that leaves, and starts on one that joins', async () => {
    const [a] = backends;
    await etcd.del('/services/checked/a');
    await waitFor(async () => (await router.routes()).health.backends[a.backend.address] === undefined, { what: 'a no longer checked' });
    const checks = a.checks;
    await new Promise((resolve) => setTimeout(resolve, 3 * INTERVAL));
    assert.ok(a.checks <= checks + 1, 'a is not checked any more');
    await etcd.put('/services/checked/a', a.backend.address);
    await waitFor(() => a.checks > checks + 1, { timeout: 5000, what: 'a checked again' });
  });
});
