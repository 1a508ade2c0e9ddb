// --legacy-root-prefix: distribution 2.x's Azure driver named every blob by its
// storage path, leading "/" included (`/docker/registry/v2/…`). A container it
// wrote is served as-is, what Tug pushes there gets the same names, and the
// catalog, tag lists and gc find them. The 2.x names are written out here by
// hand, never computed by the code under test.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ContainerClient } from '@azure/storage-blob';
import { AzuriteServer } from '../helpers/azurite.ts';
import { assertSameImage, layoutBlobs, OCI_INDEX, OciLayoutWriter, readLayoutBlob, sha256, type Descriptor } from '../helpers/oci-layout.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { TUG } from '../helpers/tug-process.ts';

const run = promisify(execFile);
const CONTAINER = 'legacy';
/** distribution 2.x's names: the storage path itself. */
const V2 = '/docker/registry/v2';

function blobName(digest: string): string {
  const hex = digest.slice('sha256:'.length);
  return `${V2}/blobs/sha256/${hex.slice(0, 2)}/${hex}/data`;
}

/**
 * Writes `top` (an image or an index, with everything it references) into the
 * container as distribution 2.x's Azure driver left it after a push: layers and
 * configs as AppendBlobs (its Writer appends blocks, and Move copies the blob,
 * type and all), manifests and links as BlockBlobs (PutContent).
 */
async function writeAsDistribution2(container: ContainerClient, layout: string, repo: string, tag: string, top: Descriptor): Promise<void> {
  const putContent = (name: string, bytes: Buffer | string) => container.getBlockBlobClient(name).upload(bytes, Buffer.byteLength(bytes));
  const writer = async (name: string, bytes: Buffer) => {
    const blob = container.getAppendBlobClient(name);
    await blob.create();
    await blob.appendBlock(bytes, bytes.length);
  };
  const repository = `${V2}/repositories/${repo}`;
  const link = (digest: string) => `sha256/${digest.slice('sha256:'.length)}/link`;
  const writeManifest = async (digest: string): Promise<void> => {
    const bytes = await readLayoutBlob(layout, digest);
    const manifest = JSON.parse(bytes.toString()) as { mediaType: string; manifests?: Descriptor[]; config?: Descriptor; layers?: Descriptor[] };
    for (const child of manifest.manifests ?? []) await writeManifest(child.digest);
    for (const blob of [...(manifest.config ? [manifest.config] : []), ...(manifest.layers ?? [])]) {
      await writer(blobName(blob.digest), await readLayoutBlob(layout, blob.digest));
      await putContent(`${repository}/_layers/${link(blob.digest)}`, blob.digest);
    }
    await putContent(blobName(digest), bytes);
    await putContent(`${repository}/_manifests/revisions/${link(digest)}`, digest);
  };
  await writeManifest(top.digest);
  await putContent(`${repository}/_manifests/tags/${tag}/current/link`, top.digest);
  await putContent(`${repository}/_manifests/tags/${tag}/index/${link(top.digest)}`, top.digest);
}

describe('distribution 2.x Azure blob names (--legacy-root-prefix)', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let container: ContainerClient;
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-legacy-naming-'));
    azurite = await AzuriteServer.start();
    registry = await startRegistry({ connectionString: azurite.connectionString, container: CONTAINER, args: ['--legacy-root-prefix'] });
    container = azurite.container(CONTAINER);
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('serves a container written by distribution 2.x as-is: catalog, tags, and a byte-identical pull', async () => {
    const source = join(work, 'written-by-2x');
    const image = new OciLayoutWriter(source);
    const amd64 = await image.writeImage([{ 'arch.txt': 'amd64\n' }, { 'data.bin': randomBytes(300_000) }], { architecture: 'amd64', os: 'linux' });
    const arm64 = await image.writeImage([{ 'arch.txt': 'arm64\n' }], { architecture: 'arm64', os: 'linux' });
    const index = await image.writeIndex([amd64, arm64]);
    await image.finish(index, 'v2x');
    await writeAsDistribution2(container, source, 'old/app', 'v2x', index);
    assert.ok((await azurite.blobNames(CONTAINER)).every((name) => name.startsWith(`${V2}/`)), 'the container holds 2.x names only');

    assert.deepEqual(await (await fetch(`${registry.url}/v2/_catalog`)).json(), { repositories: ['old/app'] });
    assert.deepEqual(await (await fetch(`${registry.url}/v2/old/app/tags/list`)).json(), { name: 'old/app', tags: ['v2x'] });
    const pulled = join(work, 'pulled-from-2x');
    await skopeoCopy(`docker://${registry.host}/old/app:v2x`, `oci:${pulled}:v2x`);
    await assertSameImage(source, pulled, 'v2x');

    // The flag is what makes these names visible: with v3's naming the same container looks empty.
    const v3 = await startRegistry({ connectionString: azurite.connectionString, container: CONTAINER });
    try {
      assert.deepEqual(await (await fetch(`${v3.url}/v2/_catalog`)).json(), { repositories: [] });
      const res = await fetch(`${v3.url}/v2/old/app/manifests/v2x`, { headers: { Accept: OCI_INDEX } });
      await res.arrayBuffer();
      assert.equal(res.status, 404);
    } finally {
      await v3.close();
    }
  });

  it('pushes under distribution 2.x\'s names: the storage path, leading "/" included', async () => {
    const source = join(work, 'pushed');
    const image = new OciLayoutWriter(source);
    const top = await image.writeImage([{ 'hello.txt': 'pushed through tug\n' }]);
    await image.finish(top, 'v1');
    await skopeoCopy(`oci:${source}:v1`, `docker://${registry.host}/pushed/app:v1`);

    const names = await azurite.blobNames(CONTAINER);
    assert.deepEqual(names.filter((name) => !name.startsWith(`${V2}/`)), [], 'no blob named otherwise');
    const manifest = JSON.parse((await readLayoutBlob(source, top.digest)).toString()) as { config: Descriptor; layers: Descriptor[] };
    const repository = `${V2}/repositories/pushed/app`;
    const expected = [
      ...(await layoutBlobs(source)).map(blobName),
      ...[manifest.config, ...manifest.layers].map((d) => `${repository}/_layers/sha256/${d.digest.slice(7)}/link`),
      `${repository}/_manifests/revisions/sha256/${top.digest.slice(7)}/link`,
      `${repository}/_manifests/tags/v1/current/link`,
      `${repository}/_manifests/tags/v1/index/sha256/${top.digest.slice(7)}/link`,
    ];
    for (const name of expected) assert.ok(names.includes(name), `${name} exists`);
    assert.equal((await container.getBlobClient(`${repository}/_manifests/tags/v1/current/link`).downloadToBuffer()).toString(), top.digest);
    const blobsOfRepository = names.filter((name) => name.startsWith(`${repository}/`));
    assert.deepEqual(blobsOfRepository.sort(), expected.filter((name) => name.startsWith(`${repository}/`)).sort(), 'nothing else in the repository');

    const pulled = join(work, 'pulled-pushed');
    await skopeoCopy(`docker://${registry.host}/pushed/app:v1`, `oci:${pulled}:v1`);
    await assertSameImage(source, pulled, 'v1');
  });

  it('garbage-collects under distribution 2.x\'s names: an unreferenced blob and its link go, the rest stays', async () => {
    const before = await azurite.blobNames(CONTAINER);
    const orphan = randomBytes(5000);
    const digest = sha256(orphan);
    const orphanLink = `${V2}/repositories/old/app/_layers/sha256/${digest.slice(7)}/link`;
    await container.getBlockBlobClient(blobName(digest)).upload(orphan, orphan.length);
    await container.getBlockBlobClient(orphanLink).upload(digest, digest.length);
    // gc deletes only what was last modified before its cut-off's second minus one (Azure keeps whole
    // seconds; garbage-collector.ts): with --grace-period 0, the orphan must be two seconds old.
    await new Promise((resolve) => setTimeout(resolve, 2100));

    const { stdout } = await run(process.execPath, [TUG, 'registry', 'gc', '--container', CONTAINER, '--legacy-root-prefix', '--grace-period', '0'], {
      env: { ...process.env, AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString },
      timeout: 30_000,
    });
    const report = JSON.parse(stdout.split('\n').find((l) => l.includes('"garbage collection')) ?? '{}') as { blobsDeleted?: number; linksDeleted?: number; manifests?: number };
    assert.equal(report.blobsDeleted, 1, stdout);
    assert.equal(report.linksDeleted, 1, stdout);
    assert.ok((report.manifests ?? 0) >= 4, 'it marked the manifests of both repositories');
    assert.deepEqual(await azurite.blobNames(CONTAINER), before, 'everything referenced stays, under the same names');
  });
});
