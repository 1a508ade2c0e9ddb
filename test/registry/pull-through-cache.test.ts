// `--proxy-remote`: the registry as a read-through mirror of an upstream
// registry — here Debian's docker-registry (distribution 2.8) with basic auth
// (htpasswd), behind a relay the test uses to make it fail, rate-limit or
// corrupt blobs. Images are pushed upstream and pulled through the mirror
// with skopeo.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import bcrypt from 'bcryptjs';
import { AzuriteServer } from '../helpers/azurite.ts';
import { DistributionRegistry, distributionUnavailable } from '../helpers/distribution.ts';
import { HttpFaultRelay } from '../helpers/http-fault-relay.ts';
import { assertSameImage, layoutBlobs, layoutTag, OciLayoutWriter, readLayoutBlob, type Descriptor } from '../helpers/oci-layout.ts';
import { errorCode, RegistryClient } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeo, skopeoCopy } from '../helpers/skopeo.ts';
import { waitFor } from '../helpers/wait.ts';

const USER = 'mirror';
const PASSWORD = 'mirror-secret';
const MANIFEST_ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';

describe('pull-through cache', { skip: distributionUnavailable() ?? false }, () => {
  let work: string;
  let upstream: DistributionRegistry;
  let relay: HttpFaultRelay;
  let azurite: AzuriteServer;
  /** The default TTL (5m): tags are not re-checked during the test. */
  let mirror: RegistryProcess;
  /** A 1 s TTL: tags are re-checked upstream on nearly every pull. */
  let quick: RegistryProcess;
  let images = 0;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-pull-through-'));
    const htpasswd = join(work, 'htpasswd');
    await writeFile(htpasswd, `${USER}:${bcrypt.hashSync(PASSWORD, 5)}\n`);
    upstream = await DistributionRegistry.start(join(work, 'upstream'), { auth: { htpasswd: { realm: 'upstream', path: htpasswd } } });
    relay = await HttpFaultRelay.start(upstream.port);
    azurite = await AzuriteServer.start();
    const proxyArgs = ['--proxy-remote', relay.url, '--proxy-username', USER, '--proxy-password', PASSWORD, '--block-size', '256KiB'];
    mirror = await startRegistry({ connectionString: azurite.connectionString, container: 'mirror', args: proxyArgs });
    quick = await startRegistry({ connectionString: azurite.connectionString, container: 'quick', args: [...proxyArgs, '--proxy-ttl', '1s'] });
  });

  after(async () => {
    await mirror?.close();
    await quick?.close();
    await azurite?.close();
    await relay?.close();
    await upstream?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** Builds an image of fresh random layers (one of 1 MiB: several blocks and chunks) and pushes it upstream as `repo:tag`. */
  async function pushUpstream(repo: string, tag: string): Promise<{ layout: string; top: Descriptor }> {
    const layout = join(work, `image-${images++}`);
    const writer = new OciLayoutWriter(layout);
    const top = await writer.writeImage([{ 'big.bin': randomBytes(1024 * 1024) }, { 'small.txt': randomBytes(2000).toString('hex') }], undefined, 1);
    await writer.finish(top, tag);
    await skopeo('copy', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', `${USER}:${PASSWORD}`, `oci:${layout}:${tag}`, `docker://${upstream.host}/${repo}:${tag}`);
    return { layout, top };
  }

  /** Pulls `repo:tag` through `registry` into a fresh layout; returns it. */
  async function pull(registry: RegistryProcess, repo: string, tag: string): Promise<string> {
    const into = join(work, `pulled-${images++}`);
    await skopeoCopy(`docker://${registry.host}/${repo}:${tag}`, `oci:${into}:${tag}`);
    return into;
  }

  async function mirrorDigest(registry: RegistryProcess, repo: string, tag: string): Promise<string | null> {
    const res = await fetch(`${registry.url}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept: MANIFEST_ACCEPT } });
    return res.status === 200 ? res.headers.get('docker-content-digest') : null;
  }

  const blobName = (digest: string) => `docker/registry/v2/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`;

  it('pulls an image it does not hold from the authenticated upstream, byte-identical, and keeps it in Azure', async () => {
    const { layout, top } = await pushUpstream('library/app', 'v1');
    const pulled = await pull(mirror, 'library/app', 'v1');
    await assertSameImage(layout, pulled, 'v1');
    const stored = await azurite.blobNames('mirror', 'docker/registry/v2/blobs/');
    for (const digest of [top.digest, ...(await layoutBlobs(layout))]) assert.ok(stored.includes(blobName(digest)), `${digest} is stored`);
  });

  it('serves the second pull from Azure without asking upstream', async () => {
    const seen = relay.requests.length;
    relay.mode = 'down';
    try {
      const pulled = await pull(mirror, 'library/app', 'v1');
      assert.equal((await layoutTag(pulled, 'v1')).digest, (await layoutTag(join(work, 'image-0'), 'v1')).digest);
      assert.deepEqual(relay.requests.slice(seen), [], 'nothing was asked of upstream');
    } finally {
      relay.mode = 'pass';
    }
  });

  it('tells the client the upstream refused the mirror\'s credentials when its basic-auth password is wrong', async () => {
    await pushUpstream('library/wrong-password', 'v1');
    const wrong = await startRegistry({ connectionString: azurite.connectionString, container: 'wrong-password', args: ['--proxy-remote', relay.url, '--proxy-username', USER, '--proxy-password', 'not-the-password'] });
    try {
      // Twice: the first request learns the upstream wants basic auth, the second sends it straight away.
      for (let i = 0; i < 2; i++) {
        const res = await fetch(`${wrong.url}/v2/library/wrong-password/manifests/v1`, { headers: { accept: MANIFEST_ACCEPT }, signal: AbortSignal.timeout(10_000) });
        assert.equal(res.status, 403);
        const body = await res.json() as { errors: { code: string; message: string }[] };
        assert.equal(body.errors[0].code, 'DENIED');
        assert.match(body.errors[0].message, /upstream registry refused this mirror's credentials/);
      }
      assert.ok(wrong.logs().some((l) => l.level === 'error' && /refused this mirror's credentials/.test(String(l.err))), 'the operator reads it in the log');
    } finally {
      await wrong.close();
    }
  });

  it('refuses pushes and deletes with 405 UNSUPPORTED', async () => {
    const client = new RegistryClient(mirror.url);
    for (const [method, path] of [['POST', '/v2/library/app/blobs/uploads/'], ['PUT', '/v2/library/app/manifests/v2'], ['DELETE', '/v2/library/app/manifests/v1']] as const) {
      const res = await client.request(method, path, method === 'PUT' ? { body: '{}', headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } } : {});
      assert.equal(res.status, 405, `${method} ${path}`);
      assert.equal(await errorCode(res), 'UNSUPPORTED');
    }
  });

  it('sees a tag moved upstream once its TTL has passed, asking upstream at most once per TTL', async () => {
    await pushUpstream('team/moving', 'latest');
    await pull(quick, 'team/moving', 'latest');
    const { layout, top } = await pushUpstream('team/moving', 'latest');
    const tagChecks = () => relay.requests.filter((r) => r.endsWith('/team/moving/manifests/latest')).length;
    const before = tagChecks();
    const started = Date.now();
    let polls = 0;
    await waitFor(async () => {
      polls++;
      return (await mirrorDigest(quick, 'team/moving', 'latest')) === top.digest;
    }, { timeout: 20_000, interval: 100, what: 'the mirror to serve the moved tag' });
    const elapsed = Date.now() - started;
    // One check per TTL (1 s) of polling, at most: more means the TTL is not honoured.
    assert.ok(tagChecks() - before <= Math.ceil(elapsed / 1000) + 1, `${tagChecks() - before} upstream checks in ${elapsed} ms of ${polls} polls`);
    await assertSameImage(layout, await pull(quick, 'team/moving', 'latest'), 'latest');
  });

  for (const mode of ['down', 'rate-limited'] as const) {
    it(`keeps serving the stored tag when upstream is ${mode}, and says so in the log`, async () => {
      const { layout, top } = await pushUpstream(`stale/${mode}`, 'v1');
      await pull(quick, `stale/${mode}`, 'v1');
      relay.mode = mode;
      try {
        const seen = relay.requests.length;
        // Past the TTL the mirror asks upstream again, gets no answer, and serves what it has.
        await waitFor(async () => (await mirrorDigest(quick, `stale/${mode}`, 'v1')) === top.digest && relay.requests.length > seen, { timeout: 10_000, interval: 200, what: 'a re-check upstream' });
        assert.equal(await mirrorDigest(quick, `stale/${mode}`, 'v1'), top.digest);
        await assertSameImage(layout, await pull(quick, `stale/${mode}`, 'v1'), 'v1');
        assert.ok(quick.logs().some((l) => l.msg === 'upstream unavailable; serving the stored tag' && l.repository === `stale/${mode}`));
        // What was never pulled cannot be served: 503, or 429 passed on.
        const missing = await fetch(`${quick.url}/v2/stale/never/manifests/v1`, { headers: { accept: MANIFEST_ACCEPT } });
        assert.equal(missing.status, mode === 'down' ? 503 : 429);
        if (mode === 'rate-limited') assert.equal(missing.headers.get('retry-after'), '30');
      } finally {
        relay.mode = 'pass';
      }
    });
  }

  it('cuts the connection and stores nothing when an upstream blob does not match its digest', async () => {
    const { layout } = await pushUpstream('library/corrupt', 'v1');
    const manifest = await (await fetch(`${mirror.url}/v2/library/corrupt/manifests/v1`, { headers: { accept: MANIFEST_ACCEPT } })).json() as { layers: { digest: string; size: number }[] };
    const layer = manifest.layers[0];
    relay.mode = 'corrupt-blobs';
    try {
      const res = await fetch(`${mirror.url}/v2/library/corrupt/blobs/${layer.digest}`);
      assert.equal(res.status, 200);
      assert.equal(Number(res.headers.get('content-length')), layer.size);
      await assert.rejects(res.arrayBuffer(), 'the body is cut short, never complete with wrong bytes');
      await waitFor(() => mirror.logs().some((l) => l.msg?.toString().includes('does not match its digest')), { timeout: 5000, what: 'the mismatch to be logged' });
      assert.ok(!(await azurite.blobNames('mirror', 'docker/registry/v2/blobs/')).includes(blobName(layer.digest)), 'nothing stored');
    } finally {
      relay.mode = 'pass';
    }
    const again = await fetch(`${mirror.url}/v2/library/corrupt/blobs/${layer.digest}`);
    assert.ok(Buffer.from(await again.arrayBuffer()).equals(await readLayoutBlob(layout, layer.digest)));
    assert.ok((await azurite.blobNames('mirror', 'docker/registry/v2/blobs/')).includes(blobName(layer.digest)), 'stored once correct');
  });

  it('serves what it pulled with the upstream registry stopped', async () => {
    await upstream.close();
    const pulled = await pull(mirror, 'library/app', 'v1');
    await assertSameImage(join(work, 'image-0'), pulled, 'v1');
  });
});
