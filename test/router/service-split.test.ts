// Weighted splits between services (`"services"` in a route rule), and the
// deploy verbs that move them (`tug deploy split`, `tug deploy canary`): real
// etcd, real backends, the real router over HTTP/1.1 and HTTP/2.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect, type ClientHttp2Session } from 'node:http2';
import { readFile } from 'node:fs/promises';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { h2Get } from '../helpers/http2-client.ts';
import { get } from '../helpers/http.ts';
import { scrape, valueOf } from '../helpers/metrics.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { TUG } from '../helpers/tug-process.ts';
import { waitFor } from '../helpers/wait.ts';

function tug(args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TUG, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

/** Requests served by each backend, the health-check-free kind (every request here is GET /). */
function served(b: TestBackend): number {
  return b.requests.length;
}

describe('weighted splits between services', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let session: ClientHttp2Session;
  let v1: TestBackend;
  let v2: TestBackend;
  let bad: TestBackend;

  before(async () => {
    const certs = await TestCertificates.create();
    const cert = await certs.issue('split.test', ['split.test', 'canary.test', 'broken.test']);
    etcd = await EtcdServer.start();
    v1 = await startBackend('v1');
    v2 = await startBackend('v2');
    bad = await startBackend('bad', (_req, res) => {
      res.writeHead(500, { 'content-length': '4' });
      res.end('bad\n');
    });
    await etcd.put('/services/web-v1/@1', v1.address);
    await etcd.put('/services/web-v2/@1', v2.address);
    await etcd.put('/services/web-bad/@1', bad.address);
    await etcd.put('/tls/split', cert.etcdValue);
    await etcd.put('/routes/split', JSON.stringify({ hosts: ['split.test'], services: [{ service: 'web-v1', weight: 90 }, { service: 'web-v2', weight: 10 }] }));
    // Two workers: each has its own split cursor; the shares still hold over the total.
    router = await startRouter({ etcd: etcd.endpoint, workers: 2, https: true });
    session = connect(`https://127.0.0.1:${router.httpsPort}`, { ca: await readFile(certs.caFile), servername: 'split.test' });
    session.on('error', () => {});
    await waitFor(async () => (await get(router.httpPort, 'split.test')).status === 200, { what: 'split routed' });
  });

  after(async () => {
    session?.close();
    await router?.stop();
    await Promise.all([v1, v2, bad].map((b) => b?.close()));
    await etcd?.close();
  });

  it('splits 90/10 within 1% over 1,000 HTTP/1.1 requests and over HTTP/2, and counts each service in /metrics', async () => {
    const before1 = (await scrape(router.adminPort)).samples;
    const base = (labels: Record<string, string>) => valueOf(before1, 'tug_requests_total', labels) ?? 0;
    const v1Before = base({ service: 'web-v1', backend: v1.address, code_class: '2xx' });
    const v2Before = base({ service: 'web-v2', backend: v2.address, code_class: '2xx' });
    v1.requests.length = 0;
    v2.requests.length = 0;
    for (let i = 0; i < 1000; i += 10) {
      const replies = await Promise.all(Array.from({ length: 10 }, () => get(router.httpPort, 'split.test')));
      assert.ok(replies.every((r) => r.status === 200));
    }
    assert.equal(served(v1) + served(v2), 1000);
    assert.ok(Math.abs(served(v2) - 100) <= 10, `web-v2 took ${served(v2)} of 1000 (want 100 ± 10)`);
    const h1v2 = served(v2);
    const h2 = { v1: 0, v2: 0 };
    for (let i = 0; i < 200; i++) {
      const reply = await h2Get(session, 'split.test');
      assert.equal(reply.status, 200);
      if (reply.body === 'v2\n') h2.v2++;
      else h2.v1++;
    }
    // One HTTP/2 connection is one worker, one cursor: the order repeats every 10 requests.
    assert.ok(Math.abs(h2.v2 - 20) <= 1, `web-v2 took ${h2.v2} of 200 HTTP/2 requests`);
    const samples = (await scrape(router.adminPort)).samples;
    assert.equal((valueOf(samples, 'tug_requests_total', { service: 'web-v2', backend: v2.address, code_class: '2xx' }) ?? 0) - v2Before, h1v2 + h2.v2);
    assert.equal(served(v2), h1v2 + h2.v2);
    assert.equal((valueOf(samples, 'tug_requests_total', { service: 'web-v1', backend: v1.address, code_class: '2xx' }) ?? 0) - v1Before, served(v1));
  });

  it('changes the split under load with no failed request (tug deploy split)', async () => {
    let stop = false;
    const statuses: number[] = [];
    const load = Promise.all(Array.from({ length: 4 }, async () => {
      while (!stop && statuses.length < 20_000) {
        statuses.push((await get(router.httpPort, 'split.test')).status);
        statuses.push((await h2Get(session, 'split.test')).status);
      }
    }));
    await waitFor(() => statuses.length > 50, { timeout: 10_000, what: 'load running' });
    const r1 = await tug(['deploy', 'split', 'split', 'web-v1=50', 'web-v2=50', '--etcd', etcd.endpoint]);
    assert.equal(r1.code, 0, r1.stderr);
    assert.match(r1.stdout, /split split: web-v1 50%, web-v2 50%/);
    await waitFor(async () => {
      v2.requests.length = 0;
      v1.requests.length = 0;
      for (let i = 0; i < 20; i++) await get(router.httpPort, 'split.test');
      return served(v2) >= 8 && served(v1) >= 8;
    }, { timeout: 10_000, what: 'the 50/50 split' });
    const r2 = await tug(['deploy', 'split', 'split', 'web-v2=100', '--etcd', etcd.endpoint]);
    assert.equal(r2.code, 0, r2.stderr);
    await waitFor(async () => {
      v1.requests.length = 0;
      for (let i = 0; i < 10; i++) await get(router.httpPort, 'split.test');
      return served(v1) === 0;
    }, { timeout: 10_000, what: 'everything on web-v2' });
    stop = true;
    await load;
    assert.ok(statuses.length > 100, `only ${statuses.length} requests under load`);
    assert.deepEqual(statuses.filter((s) => s !== 200), [], 'every request under load succeeded');
    // One service is written back as "service".
    assert.deepEqual(JSON.parse(await etcd.etcdctl('get', '--print-value-only', '/routes/split')), { service: 'web-v2', hosts: ['split.test'] });
    const refused = await tug(['deploy', 'split', 'split', 'web-v1=101', '--etcd', etcd.endpoint]);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /weight 0\.\.100/);
  });

  it('tug deploy canary steps a healthy service up to 100%', async () => {
    await etcd.put('/routes/canary', JSON.stringify({ hosts: ['canary.test'], service: 'web-v1', timeouts: { response: 5000 } }));
    await waitFor(async () => (await get(router.httpPort, 'canary.test')).status === 200, { what: 'canary routed' });
    let stop = false;
    const load = (async () => {
      for (let n = 0; !stop && n < 20_000; n++) await get(router.httpPort, 'canary.test');
    })();
    const result = await tug(['deploy', 'canary', 'canary', '--to', 'web-v2', '--steps', '25,50,100', '--interval', '600ms', '--poll-interval', '200ms',
      '--min-requests', '5', '--etcd', etcd.endpoint, '--routers', `http://127.0.0.1:${router.adminPort}`]);
    stop = true;
    await load;
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /\[1\/3\] web-v1 75%, web-v2 25%/);
    assert.match(result.stdout, /\[3\/3\] web-v2 100%/);
    const rule = JSON.parse(await etcd.etcdctl('get', '--print-value-only', '/routes/canary'));
    assert.deepEqual(rule, { service: 'web-v2', hosts: ['canary.test'], timeouts: { response: 5000 } });
  });

  it('tug deploy canary rolls back a service answering 500s, finding the routers in etcd', async () => {
    const original = { hosts: ['broken.test'], services: [{ service: 'web-v1', weight: 3 }, { service: 'web-v2', weight: 1 }] };
    await etcd.put('/routes/broken', JSON.stringify(original));
    await waitFor(async () => (await get(router.httpPort, 'broken.test')).status === 200, { what: 'broken routed' });
    await waitFor(async () => (await etcd.etcdctl('get', '--prefix', '--keys-only', '/routers/')).length > 0, { timeout: 20_000, what: 'the router registered' });
    let stop = false;
    const load = (async () => {
      for (let n = 0; !stop && n < 20_000; n++) await get(router.httpPort, 'broken.test');
    })();
    const result = await tug(['deploy', 'canary', 'broken', '--to', 'web-bad', '--steps', '20,100', '--interval', '5s', '--poll-interval', '200ms',
      '--min-requests', '5', '--etcd', etcd.endpoint]);
    stop = true;
    await load;
    assert.equal(result.code, 3, `${result.stdout}\n${result.stderr}`);
    assert.match(result.stdout, /\[1\/2\] web-v1 60%, web-v2 20%, web-bad 20%/);
    assert.doesNotMatch(result.stdout, /\[2\/2\]/);
    assert.match(result.stderr, /canary rolled back: web-bad answered \d+ of \d+ requests with 5xx/);
    assert.deepEqual(JSON.parse(await etcd.etcdctl('get', '--print-value-only', '/routes/broken')), original);
  });
});
