// The cluster under faults: three hosts behind the load balancer, continuous
// load through it, one fault at a time, every failed request counted. Each
// test leaves the cluster as it found it (every router healthy in the LB, every
// app instance routed) for the next one. Figures go to test/cluster/REPORT.md.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { assertSameImage, OciLayoutWriter } from '../helpers/oci-layout.ts';
import { skopeo } from '../helpers/skopeo.ts';
import { get } from '../helpers/http.ts';
import { scrape, valueOf } from '../helpers/metrics.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { ClusterReport } from '../helpers/cluster/cluster-report.ts';
import { LoadGenerator, summarize, type LoadSummary } from '../helpers/cluster/load-generator.ts';
import { LEASE_TTL, REGISTRY_USER, TugCluster } from '../helpers/cluster/tug-cluster.ts';

const report = new ClusterReport('faults', 'Faults under load');
const started = Date.now();

/** Plain HTTP GET to a router's own HTTP port (bypassing the LB). */
function direct(cluster: TugCluster, node: string, host: string, path = '/') {
  const n = cluster.node(node);
  return getAt(n.host.address, n.httpPort, host, path);
}

async function getAt(address: string, port: number, host: string, path = '/'): Promise<{ status: number; backend: string }> {
  const reply = await get(port, host, path, { address, timeout: 5000 });
  return { status: reply.status, backend: String(reply.headers['x-backend'] ?? '') };
}

/** Bytes under `dir` (an upload spool), 0 while it is missing. */
async function spooledBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true }).catch(() => [])) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name)).catch(() => ({ size: 0 }))).size;
  }
  return total;
}

function describeFailures(summary: LoadSummary): string {
  return `${summary.failed} of ${summary.sent} failed: ${JSON.stringify(summary.failures)}`;
}

describe('the cluster under faults', () => {
  let cluster: TugCluster;

  before(async () => {
    cluster = await TugCluster.start({ registry: true });
  });

  after(async () => {
    const network = cluster?.network.namespaces === false ? `loopback fallback (${cluster.network.fallbackReason})` : 'network namespaces';
    await cluster?.close();
    report.write({ network, wallMs: Date.now() - started });
  });

  /** Load through the LB while `fault` runs; returns what the client saw. */
  async function underLoad(host: string, fault: () => Promise<void>, { settle = 500, rate = 150, connections = 4 } = {}): Promise<LoadSummary> {
    const load = new LoadGenerator(cluster.lb.url, { host, connections, rate, timeout: 5000, maxDuration: 90_000 });
    await sleep(settle);
    try {
      await fault();
      await sleep(settle);
    } finally {
      await load.stop();
    }
    return summarize(load.records);
  }

  /** Every router healthy in the LB and every instance of `app` routed by every router. */
  async function assertRestored(): Promise<void> {
    await cluster.lb.waitAllHealthy(30_000);
    await cluster.waitRouted('app', cluster.apps.filter((a) => a.service === 'app').map((a) => a.address), { timeout: 30_000 });
  }

  it('serves a request that lands on a node without the app (any node serves any app)', async () => {
    const solo = await cluster.startApp('solo', 'solo-h2', cluster.network.host('h2'));
    try {
      await cluster.waitRouted('solo', [solo.address]);
      for (const node of ['h1', 'h2', 'h3']) {
        const reply = await direct(cluster, node, 'solo.test');
        assert.deepEqual(reply, { status: 200, backend: 'solo-h2' }, `router on ${node} serves solo (instance on h2)`);
      }
      const summary = await underLoad('solo.test', () => sleep(2000));
      report.fault({
        fault: 'request lands on a node without the app',
        target: '0 failures',
        sent: summary.sent,
        failed: summary.failed,
        failures: summary.failures,
        recovery: '—',
        held: summary.failed === 0,
        notes: 'app `solo` runs on h2 only; the LB spreads connections over all three routers, two of which forward to h2',
      });
      assert.ok(summary.sent > 100, `load ran (${summary.sent} requests)`);
      assert.equal(summary.failed, 0, describeFailures(summary));
    } finally {
      await cluster.removeApp(solo);
    }
  });

  it('loses nothing when the etcd leader is killed, and takes it back', async () => {
    let recovery = 0;
    let leaderName = '';
    const summary = await underLoad('app.test', async () => {
      const leader = await cluster.etcd.leader();
      leaderName = `${leader.name} on ${leader.host.name}`;
      await leader.stop('SIGKILL');
      const killed = Date.now();
      await waitFor(async () => (await cluster.etcd.leader()) !== leader, { timeout: 15_000, interval: 50, what: 'a new etcd leader' });
      recovery = Date.now() - killed;
      await sleep(1000);
      cluster.etcd.resume(leader);
      await cluster.etcd.waitHealthy();
      // A write through the cluster reaches every router: the routers' etcd watches survived.
      await cluster.etcd.put('/routes/after-leader', JSON.stringify({ service: 'app', hosts: ['leader.test'] }));
      await waitFor(async () => {
        for (const node of ['h1', 'h2', 'h3']) if ((await direct(cluster, node, 'leader.test')).status !== 200) return false;
        return true;
      }, { timeout: 10_000, interval: 50, what: 'a route put after the leader change to reach every router' });
    });
    await cluster.etcd.del('/routes/after-leader');
    report.fault({
      fault: 'etcd leader killed (SIGKILL), then restarted',
      target: '0 failures',
      sent: summary.sent,
      failed: summary.failed,
      failures: summary.failures,
      recovery: `new leader after ${recovery} ms`,
      held: summary.failed === 0,
      notes: `killed ${leaderName}; after its restart, a new route reached all three routers`,
    });
    assert.equal(summary.failed, 0, describeFailures(summary));
    await assertRestored();
  });

  /** Time until every router in `nodes` no longer sends to `address`: ejected (passive health) or out of its table. */
  async function waitEjected(address: string, nodes = cluster.nodes): Promise<number> {
    const started = Date.now();
    await waitFor(async () => {
      for (const node of nodes) {
        if (!(await cluster.routed(node, 'app')).includes(address)) continue;
        const { samples } = await scrape(node.adminPort, node.host.address);
        if (valueOf(samples, 'tug_backend_ejected', { service: 'app', backend: address }) !== 1) return false;
      }
      return true;
    }, { timeout: 10_000, interval: 20, what: `every router to stop sending to ${address}` });
    return Date.now() - started;
  }

  it('loses no idempotent request when an app instance is SIGKILLed, ejects it within 1 s, and takes it back when re-announced', async () => {
    const victim = cluster.app('h1');
    let ejectedMs = 0;
    let backMs = 0;
    let restarted = 0;
    const load = new LoadGenerator(cluster.lb.url, { host: 'app.test', connections: 4, rate: 150, timeout: 5000, maxDuration: 60_000 });
    try {
      await sleep(500);
      victim.app!.kill('SIGKILL');
      ejectedMs = await waitEjected(victim.address);
      await cluster.waitRouted('app', cluster.apps.filter((a) => a !== victim).map((a) => a.address));
      await cluster.startAppProcess(victim);
      restarted = Date.now();
      await cluster.waitRouted('app', cluster.apps.map((a) => a.address));
      await waitFor(() => load.records.some((r) => r.start >= restarted && r.detail === victim.name), { timeout: 10_000, what: `requests to reach ${victim.name} again` });
      backMs = Date.now() - restarted;
      await sleep(500);
    } finally {
      await load.stop();
    }
    const summary = summarize(load.records);
    report.fault({
      fault: 'an app instance SIGKILLed, then started again',
      target: '0 failures (idempotent GETs); ejected ≤ 1 s; back when re-announced',
      sent: summary.sent,
      failed: summary.failed,
      failures: summary.failures,
      recovery: `ejected by every router after ${ejectedMs} ms; serving again ${backMs} ms after its restart`,
      held: summary.failed === 0 && ejectedMs <= 1000,
      notes: `refused connections go to the next backend; the announcer withdrew the key on its next health check (interval 1 s); max latency ${summary.max} ms`,
    });
    assert.equal(summary.failed, 0, describeFailures(summary));
    assert.ok(ejectedMs <= 1000, `ejected after ${ejectedMs} ms`);
    await assertRestored();
  });

  it('loses nothing when a router is SIGTERMed and restarted behind the load balancer', async () => {
    const node = cluster.node('h2');
    let code: number | null = null;
    let noticedMs = 0;
    let exitedMs = 0;
    let backMs = 0;
    const summary = await underLoad('app.test', async () => {
      const stopped = Date.now();
      const exit = cluster.stopRouter(node);
      noticedMs = (await cluster.lb.waitFor('h2', false, { since: stopped })) - stopped;
      code = await exit;
      exitedMs = Date.now() - stopped;
      const restarting = Date.now();
      await cluster.restartRouter(node);
      backMs = (await cluster.lb.waitFor('h2', true, { since: restarting })) - restarting;
    }, { settle: 1000, connections: 16, rate: 300 });
    report.fault({
      fault: 'a router SIGTERMed, then restarted',
      target: '0 failures',
      sent: summary.sent,
      failed: summary.failed,
      failures: summary.failures,
      recovery: `LB saw it down ${noticedMs} ms after SIGTERM; it exited after ${exitedMs} ms; back in the LB ${backMs} ms after its restart`,
      held: summary.failed === 0,
      notes: `exit code ${code}`,
    });
    assert.equal(code, 0);
    assert.equal(summary.failed, 0, describeFailures(summary));
    await assertRestored();
  });

  it('drops a host whose links are cut: its instance leaves the tables within the lease TTL, and nothing fails once the LB notices', async (t) => {
    if (!cluster.network.namespaces) {
      t.skip('needs network namespaces: on loopback addresses a host cannot be made unreachable');
      report.fault({ fault: 'a whole host cut off (its link down)', target: 'skipped: needs network namespaces', sent: 0, failed: 0, failures: {}, recovery: '—', held: false });
      return;
    }
    // A host that does not hold the etcd leader: cutting the leader's host adds an election (1–2 s)
    // before any lease can expire, on top of the TTL (measured once: 5.2 s to leave the tables).
    const leader = await cluster.etcd.leader();
    const host = cluster.network.hosts.find((h) => h !== leader.host && h.name !== 'h1')!;
    const gone = cluster.app(host.name);
    let cut = 0;
    let noticed = 0;
    let leftMs = 0;
    // 16 connections: requests hanging into the cut host hold theirs (one request per connection) for the
    // client's 5 s, and a handful of connections would all be held, stalling the load.
    const load = new LoadGenerator(cluster.lb.url, { host: 'app.test', connections: 16, rate: 150, timeout: 5000, maxDuration: 60_000 });
    try {
      await sleep(500);
      cluster.network.cut(host);
      cut = Date.now();
      noticed = await cluster.lb.waitFor(host.name, false, { since: cut });
      const others = cluster.nodes.filter((n) => n.host !== host);
      const left = await cluster.waitRouted('app', cluster.apps.filter((a) => a !== gone).map((a) => a.address), { nodes: others, timeout: 30_000 }).catch(() => NaN);
      leftMs = left - cut;
      await sleep(1000);
    } finally {
      cluster.network.restore(host);
      await load.stop();
    }
    const all = summarize(load.records);
    const afterNotice = summarize(load.records.filter((r) => r.start >= noticed));
    report.fault({
      fault: 'a whole host cut off (its link down)',
      target: `instances out of the tables within the lease TTL (${LEASE_TTL} s); 0 failures after the LB notices`,
      sent: all.sent,
      failed: all.failed,
      failures: all.failures,
      recovery: `LB noticed after ${noticed - cut} ms; its instance left the other routers' tables after ${Number.isNaN(leftMs) ? 'more than 30 s' : `${leftMs} ms`}`,
      held: afterNotice.sent >= 100 && afterNotice.failed === 0 && leftMs <= LEASE_TTL * 1000 + 1000,
      notes: `cut ${host.name} (the etcd leader was ${leader.name} on ${leader.host.name}); ${afterNotice.sent} requests sent after the LB noticed, ${afterNotice.failed} failed; the ${all.failed - afterNotice.failed} before were requests already on their way into ${host.name} when its link went down — through its router, or from another router on a keep-alive connection to its app — which only a timeout reveals (the client's 5 s; the router's --response-timeout is 60 s)`,
    });
    assert.ok(afterNotice.sent >= 100, `the load went on after the LB noticed (${afterNotice.sent} requests)`);
    assert.equal(afterNotice.failed, 0, `after the LB noticed: ${describeFailures(afterNotice)}`);
    assert.ok(leftMs <= LEASE_TTL * 1000 + 1000, `left the tables after ${leftMs} ms (TTL ${LEASE_TTL} s, plus the routers' watch delivery)`);
    await cluster.etcd.waitHealthy(30_000);
    await assertRestored();
  });

  it('keeps serving known routes with all of etcd down for 30 s, and routes a new key within 1 s of its return', async () => {
    let routedMs = 0;
    const summary = await underLoad('app.test', async () => {
      await Promise.all(cluster.etcd.members.map((m) => m.stop('SIGKILL')));
      await sleep(30_000);
      for (const member of cluster.etcd.members) cluster.etcd.resume(member);
      await cluster.etcd.waitHealthy(30_000);
      const back = Date.now();
      await cluster.etcd.put('/routes/fresh', JSON.stringify({ service: 'app', hosts: ['fresh.test'] }));
      await waitFor(async () => {
        for (const node of ['h1', 'h2', 'h3']) if ((await direct(cluster, node, 'fresh.test')).status !== 200) return false;
        return true;
      }, { timeout: 15_000, interval: 20, what: 'the new route on every router' });
      routedMs = Date.now() - back;
    }, { rate: 100 });
    await cluster.etcd.del('/routes/fresh');
    report.fault({
      fault: 'all of etcd down for 30 s, then back',
      target: '0 failures on known routes; a new key routed ≤ 1 s after etcd returns',
      sent: summary.sent,
      failed: summary.failed,
      failures: summary.failures,
      recovery: `a route put right after etcd was healthy again served on all three routers ${routedMs} ms later`,
      held: summary.failed === 0 && routedMs <= 1000,
      notes: 'all three members SIGKILLed; measured from the moment every member answered /health again',
    });
    assert.equal(summary.failed, 0, describeFailures(summary));
    assert.ok(routedMs <= 1000, `new key routed after ${routedMs} ms`);
    await assertRestored();
  });

  it('fails a push cleanly when Azurite is killed during it; the retry succeeds and no partial blob is ever visible', async () => {
    const azurite = cluster.azurite!;
    const registry = cluster.node('h1').registry!;
    const work = await mkdtemp(join(tmpdir(), 'tug-cluster-push-'));
    try {
      const source = join(work, 'source');
      const writer = new OciLayoutWriter(source);
      // Random bytes do not compress: a 24 MiB layer takes long enough to push to be cut.
      const image = await writer.writeImage([{ 'data.bin': randomBytes(24 * 1024 * 1024) }], undefined, 1);
      await writer.finish(image, 'v1');
      const layers = (await readdir(join(source, 'blobs', 'sha256'))).map((hex) => `sha256:${hex}`);
      const creds = `${REGISTRY_USER.user}:${REGISTRY_USER.password}`;
      const push = () => skopeo('copy', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${source}:v1`, `docker://${registry.host}/cluster/app:v1`);

      const layerSize = Math.max(...await Promise.all(layers.map(async (d) => (await stat(join(source, 'blobs', 'sha256', d.slice(7)))).size)));
      // Azurite saves its metadata every 5 s: a crash before that loses the container itself, which
      // real Azure storage never does. Wait until the container is on Azurite's disk.
      await waitFor(async () => (await readFile(join(azurite.location, '__azurite_db_blob__.json'), 'utf8').catch(() => '')).includes('"registry"'), { timeout: 15_000, interval: 100, what: "Azurite to save the registry's container" });
      const first = push().then(() => null, (err: Error) => err);
      // Kill Azurite (SIGKILL: a crash) once the layer is spooled on the node: its final PUT is
      // about to stream it into Azure blocks.
      await waitFor(async () => (await spooledBytes(registry.uploadDir)) >= layerSize, { timeout: 30_000, interval: 5, what: 'the layer spooled on the registry' });
      await azurite.stop('SIGKILL');
      const error = await first;
      assert.ok(error, 'the push fails while Azure storage is gone');

      await azurite.resume();
      const resumed = Date.now();
      const auth = { authorization: `Basic ${Buffer.from(creds).toString('base64')}` };
      // Through the registry API: every blob of the image is either absent or whole.
      const visible: string[] = [];
      for (const digest of layers) {
        const res = await fetch(`${registry.url}/v2/cluster/app/blobs/${digest}`, { method: 'HEAD', headers: auth });
        if (res.status === 200) {
          visible.push(digest);
          const { size } = await stat(join(source, 'blobs', 'sha256', digest.slice(7)));
          assert.equal(Number(res.headers.get('content-length')), size, `${digest} is visible only whole`);
        } else {
          assert.equal(res.status, 404, `${digest}: ${res.status}`);
        }
      }
      // In the container: every committed blob's content hashes to the digest it is named by.
      const names = (await azurite.blobNames('registry')).filter((n) => n.endsWith('/data') && n.includes('/blobs/sha256/'));
      for (const name of names) {
        const hex = name.split('/').at(-2)!;
        const bytes = await azurite.container('registry').getBlobClient(name).downloadToBuffer();
        assert.equal(createHash('sha256').update(bytes).digest('hex'), hex, `${name} holds exactly its digest's bytes`);
      }

      await push();
      const retried = Date.now() - resumed;
      // Pulled back through another node's registry: the storage is the cluster's, not the node's.
      const pulled = join(work, 'pulled');
      const other = cluster.node('h2').registry!;
      await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--src-creds', creds, `docker://${other.host}/cluster/app:v1`, `oci:${pulled}:v1`);
      await assertSameImage(source, pulled, 'v1');
      report.fault({
        fault: 'Azurite killed (SIGKILL) during a skopeo push to a node\'s registry',
        target: 'the client gets an error; retrying succeeds; no partial blob visible',
        sent: 2,
        failed: 1,
        failures: { 'first push (expected)': 1 },
        recovery: `the retry succeeded ${retried} ms after Azurite restarted; pulled back byte-identical through another node's registry`,
        held: true,
        notes: `first push: "${/received unexpected HTTP status: [^"\n]+/.exec(error.message)?.[0] ?? error.message.split('\n').at(-1)!.slice(-160).replaceAll('|', '/')}"; after Azurite's restart, before the retry: ${visible.length} of ${layers.length} blobs of the image visible through the registry (each whole), ${names.length} committed blobs in the container (each hashing to its name)`,
      });
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});
