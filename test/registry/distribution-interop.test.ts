// Tug and the Docker registry itself (Debian's distribution 2.8) share one
// storage layout, in both directions: an image pushed through distribution is
// served by Tug once distribution's storage tree is in Azure under its Azure
// driver's names, and an image pushed through Tug is served by distribution
// from the container's blobs laid out on disk. Every image comes back
// byte-identical through skopeo.
//
// Debian builds docker-registry without the Azure driver ("StorageDriver not
// registered: azure"), so distribution runs on its filesystem driver and the
// tree crosses over as files; the one step it does not run here is its Azure
// driver's path → blob name mapping, which these tests state from its source
// (2.x: the storage path itself; v3: without the leading "/").
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzuriteServer } from '../helpers/azurite.ts';
import { distributionUnavailable, DistributionRegistry, downloadStorageTree, uploadStorageTree } from '../helpers/distribution.ts';
import { assertSameImage, OciLayoutWriter } from '../helpers/oci-layout.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';

interface AzureNaming {
  readonly label: string;
  readonly container: string;
  readonly tugArgs: readonly string[];
  /** The blob name distribution's Azure driver gives a storage path. */
  readonly nameOf: (path: string) => string;
  readonly pathOf: (name: string) => string;
  readonly prefix: string;
}

const NAMINGS: readonly AzureNaming[] = [
  {
    label: 'distribution 2.x\'s Azure names (--legacy-root-prefix)',
    container: 'names-v2',
    tugArgs: ['--legacy-root-prefix'],
    nameOf: (path) => path,
    pathOf: (name) => name,
    prefix: '/docker/registry/v2/',
  },
  {
    label: 'distribution v3\'s Azure names',
    container: 'names-v3',
    tugArgs: [],
    nameOf: (path) => path.slice(1),
    pathOf: (name) => `/${name}`,
    prefix: 'docker/registry/v2/',
  },
];

const unavailable = distributionUnavailable();

describe('interoperation with distribution (docker-registry 2.8)', { skip: unavailable ?? false }, () => {
  let azurite: AzuriteServer;
  const tug = new Map<string, RegistryProcess>();
  let work: string;
  let dirs = 0;
  const dir = (what: string) => join(work, `${what}-${dirs++}`);

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-distribution-'));
    azurite = await AzuriteServer.start();
    for (const naming of NAMINGS) {
      tug.set(naming.container, await startRegistry({ connectionString: azurite.connectionString, container: naming.container, args: naming.tugArgs }));
    }
  });

  after(async () => {
    for (const registry of tug.values()) await registry.close();
    await azurite?.close();
    await rm(work, { recursive: true, force: true });
  });

  /** A two-platform index, the shape that exercises tags, child manifests by digest, configs and layers. */
  async function buildImage(tag: string): Promise<string> {
    const source = dir('source');
    const image = new OciLayoutWriter(source);
    const amd64 = await image.writeImage([{ 'arch.txt': 'amd64\n' }, { 'data.bin': randomBytes(200_000) }], { architecture: 'amd64', os: 'linux' });
    const arm64 = await image.writeImage([{ 'arch.txt': 'arm64\n' }], { architecture: 'arm64', os: 'linux' });
    await image.finish(await image.writeIndex([amd64, arm64]), tag);
    return source;
  }

  for (const naming of NAMINGS) {
    it(`serves an image pushed through distribution, its storage tree uploaded under ${naming.label}`, async () => {
      const source = await buildImage('from-distribution');
      const distribution = await DistributionRegistry.start(dir('distribution-root'));
      try {
        await skopeoCopy(`oci:${source}:from-distribution`, `docker://${distribution.host}/interop/app:from-distribution`);
      } finally {
        await distribution.close();
      }
      const names = await uploadStorageTree(azurite.container(naming.container), distribution.root, naming.nameOf);
      assert.ok(names.length > 0 && names.every((name) => name.startsWith(naming.prefix)), 'distribution wrote its layout');

      const registry = tug.get(naming.container)!;
      assert.deepEqual(await (await fetch(`${registry.url}/v2/interop/app/tags/list`)).json(), { name: 'interop/app', tags: ['from-distribution'] });
      const pulled = dir('pulled-from-tug');
      await skopeoCopy(`docker://${registry.host}/interop/app:from-distribution`, `oci:${pulled}:from-distribution`);
      await assertSameImage(source, pulled, 'from-distribution');
    });

    it(`pushes an image through Tug under ${naming.label} that distribution serves from those blobs`, async () => {
      const source = await buildImage('from-tug');
      const registry = tug.get(naming.container)!;
      await skopeoCopy(`oci:${source}:from-tug`, `docker://${registry.host}/interop/pushed:from-tug`);
      const root = dir('distribution-root');
      const paths = await downloadStorageTree(azurite.container(naming.container), `${naming.prefix}repositories/interop/pushed/`, root, naming.pathOf);
      assert.ok(paths.length > 0, 'Tug wrote the repository under these names');
      await downloadStorageTree(azurite.container(naming.container), `${naming.prefix}blobs/`, root, naming.pathOf);

      const distribution = await DistributionRegistry.start(root);
      try {
        assert.deepEqual(await (await fetch(`${distribution.url}/v2/interop/pushed/tags/list`)).json(), { name: 'interop/pushed', tags: ['from-tug'] });
        const pulled = dir('pulled-from-distribution');
        await skopeoCopy(`docker://${distribution.host}/interop/pushed:from-tug`, `oci:${pulled}:from-tug`);
        await assertSameImage(source, pulled, 'from-tug');
      } catch (err) {
        throw new Error(`${(err as Error).message}\ndistribution output:\n${distribution.output.slice(-3000)}`, { cause: err });
      } finally {
        await distribution.close();
      }
    });
  }
});
