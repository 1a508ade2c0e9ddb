// The per-node cache: a second pull is served without Azure (Azurite is
// stopped for it), concurrent pulls of one uncached blob read Azure once, and
// the cache stays within its size, evicting the least recently used blob.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzuriteServer } from '../helpers/azurite.ts';
import { layoutBlobs, layoutTag, OciLayoutWriter, readLayoutBlob } from '../helpers/oci-layout.ts';
import { errorCode, RegistryClient } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { waitFor } from '../helpers/wait.ts';

/** Total bytes of the files under `dir` (one evicted while it is counted counts nothing). */
async function du(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (entry.isFile()) total += (await stat(join(entry.parentPath, entry.name)).catch(() => null))?.size ?? 0;
  }
  return total;
}

describe('per-node cache', () => {
  let azurite: AzuriteServer;
  let work: string;
  const registries: RegistryProcess[] = [];

  async function registryWithCache(cacheSize: string): Promise<{ registry: RegistryProcess; client: RegistryClient; cacheDir: string }> {
    const cacheDir = await mkdtemp(join(work, 'cache-'));
    const registry = await startRegistry({ connectionString: azurite.connectionString, args: ['--cache-dir', cacheDir, '--cache-size', cacheSize] });
    registries.push(registry);
    return { registry, client: new RegistryClient(registry.url), cacheDir };
  }

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-cache-'));
    azurite = await AzuriteServer.start();
  });

  after(async () => {
    await Promise.all(registries.map((r) => r.close()));
    await azurite?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('serves a second pull from the cache with Azure stopped, byte-identically', async () => {
    const { registry } = await registryWithCache('1GiB');
    const source = join(work, 'source');
    const image = new OciLayoutWriter(source);
    const top = await image.writeImage([{ 'app.bin': randomBytes(3 * 1024 * 1024) }, { 'etc/config': 'x=1\n' }]);
    await image.finish(top, 'v1');
    await skopeoCopy(`oci:${source}:v1`, `docker://${registry.host}/cached/app:v1`);
    await skopeoCopy(`docker://${registry.host}/cached/app:v1`, `oci:${join(work, 'first-pull')}:v1`);

    await azurite.stop();
    try {
      const second = join(work, 'second-pull');
      await skopeoCopy(`docker://${registry.host}/cached/app:v1`, `oci:${second}:v1`);
      assert.equal((await layoutTag(second, 'v1')).digest, top.digest);
      for (const digest of await layoutBlobs(source)) {
        assert.ok((await readLayoutBlob(second, digest)).equals(await readLayoutBlob(source, digest)), `${digest} is byte-identical`);
      }
    } finally {
      await azurite.resume();
    }
  });

  it('reads an uncached blob from Azure once for many concurrent pulls', async () => {
    const { registry, client } = await registryWithCache('1GiB');
    const content = randomBytes(5 * 1024 * 1024);
    const digest = await client.pushBlob('cached/concurrent', content);
    const bodies = await Promise.all(Array.from({ length: 8 }, async () => {
      const res = await client.request('GET', `/v2/cached/concurrent/blobs/${digest}`);
      assert.equal(res.status, 200);
      return Buffer.from(await res.arrayBuffer());
    }));
    for (const body of bodies) assert.ok(body.equals(content));
    const fills = registry.logs().filter((l) => l.msg === 'cache fill' && l.digest === digest);
    assert.equal(fills.length, 1, 'one fill from Azure');
    const ranged = await client.request('GET', `/v2/cached/concurrent/blobs/${digest}`, { headers: { Range: 'bytes=100-199' } });
    assert.equal(ranged.status, 206);
    assert.ok(Buffer.from(await ranged.arrayBuffer()).equals(content.subarray(100, 200)), 'ranges are served from the cache too');
  });

  it('stays within --cache-size, evicting the least recently used blob first', async () => {
    const { client, cacheDir } = await registryWithCache('1MiB');
    const blobs = [randomBytes(400_000), randomBytes(400_000), randomBytes(400_000)];
    const digests = [];
    for (const blob of blobs) digests.push(await client.pushBlob('cached/lru', blob));
    for (const digest of digests) await (await client.request('GET', `/v2/cached/lru/blobs/${digest}`)).arrayBuffer();
    // A fill ends (rename, then eviction) just after its reader got the last byte.
    await waitFor(async () => (await du(cacheDir)) <= 1024 * 1024, { timeout: 5000, what: 'the cache to fit its bound' });

    await azurite.stop();
    try {
      const newest = await client.request('GET', `/v2/cached/lru/blobs/${digests[2]}`);
      assert.equal(newest.status, 200, 'the most recently used blob is still cached');
      assert.ok(Buffer.from(await newest.arrayBuffer()).equals(blobs[2]));
      const oldest = await client.request('GET', `/v2/cached/lru/blobs/${digests[0]}`);
      assert.equal(oldest.status, 503, 'the least recently used blob was evicted and needs Azure');
      assert.equal(await errorCode(oldest), 'UNAVAILABLE');
    } finally {
      await azurite.resume();
    }
  });
});
