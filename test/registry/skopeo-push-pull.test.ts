// Push and pull with a real client: skopeo copies images built here as OCI
// layouts into `tug registry` (on Azurite) and back into other layouts, and
// every blob must come back byte-identical.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzuriteServer } from '../helpers/azurite.ts';
import { layoutBlobs, layoutTag, OciLayoutWriter, readLayoutBlob, type Descriptor } from '../helpers/oci-layout.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';

describe('push and pull with skopeo', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let work: string;
  let layouts = 0;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-skopeo-'));
    azurite = await AzuriteServer.start();
    registry = await startRegistry({ connectionString: azurite.connectionString });
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
    await rm(work, { recursive: true, force: true });
  });

  function layoutDir(): string {
    return join(work, `layout-${layouts++}`);
  }

  /** Pushes `source:tag` to `repo:tag`, pulls it into a fresh layout, and checks every blob and the top digest. */
  async function roundTrip(source: string, top: Descriptor, repo: string, tag: string): Promise<string> {
    await skopeoCopy(`oci:${source}:${tag}`, `docker://${registry.host}/${repo}:${tag}`);
    const pulled = layoutDir();
    await skopeoCopy(`docker://${registry.host}/${repo}:${tag}`, `oci:${pulled}:${tag}`);
    assert.equal((await layoutTag(pulled, tag)).digest, top.digest, 'the pulled image has the pushed digest');
    const sent = await layoutBlobs(source);
    assert.deepEqual(await layoutBlobs(pulled), sent, 'the same set of blobs came back');
    for (const digest of sent) {
      assert.ok((await readLayoutBlob(pulled, digest)).equals(await readLayoutBlob(source, digest)), `${digest} is byte-identical`);
    }
    return pulled;
  }

  it('pushes and pulls a one-layer image byte-identically', async () => {
    const dir = layoutDir();
    const image = new OciLayoutWriter(dir);
    const top = await image.writeImage([{ 'hello.txt': 'hello from tug\n', 'etc/os-release': 'ID=tug\n' }]);
    await image.finish(top, 'v1');
    await roundTrip(dir, top, 'library/hello', 'v1');
    const tags = await (await fetch(`${registry.url}/v2/library/hello/tags/list`)).json();
    assert.deepEqual(tags, { name: 'library/hello', tags: ['v1'] });
  });

  it('pushes and pulls a six-layer image byte-identically', async () => {
    const dir = layoutDir();
    const image = new OciLayoutWriter(dir);
    const layers = Array.from({ length: 6 }, (_, i) => ({ [`layer-${i}/data.bin`]: randomBytes(64 * 1024 + i * 4099) }));
    const top = await image.writeImage(layers);
    await image.finish(top, 'six');
    await roundTrip(dir, top, 'apps/six-layers', 'six');
  });

  it('pushes and pulls a multi-platform index with every platform byte-identically', async () => {
    const dir = layoutDir();
    const image = new OciLayoutWriter(dir);
    const amd64 = await image.writeImage([{ 'arch.txt': 'amd64\n' }, { 'common.txt': randomBytes(4096) }], { architecture: 'amd64', os: 'linux' });
    const arm64 = await image.writeImage([{ 'arch.txt': 'arm64\n' }], { architecture: 'arm64', os: 'linux' });
    const index = await image.writeIndex([amd64, arm64]);
    await image.finish(index, 'multi');
    await roundTrip(dir, index, 'apps/multi', 'multi');
    const res = await fetch(`${registry.url}/v2/apps/multi/manifests/multi`, { headers: { Accept: 'application/vnd.oci.image.index.v1+json' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/vnd.oci.image.index.v1+json');
    assert.equal(res.headers.get('docker-content-digest'), index.digest);
  });

  it('pushes and pulls a 100 MiB layer byte-identically', async () => {
    const dir = layoutDir();
    const image = new OciLayoutWriter(dir);
    // Random bytes do not compress: the gzip'd layer stays about 100 MiB.
    const top = await image.writeImage([{ 'big.bin': randomBytes(100 * 1024 * 1024) }], undefined, 1);
    await image.finish(top, 'big');
    await roundTrip(dir, top, 'apps/big', 'big');
  });
});
