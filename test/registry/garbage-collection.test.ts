// `tug registry gc` as operators run it (the real CLI process) against
// Azurite: it deletes what no manifest references, keeps everything that is
// referenced (the image still pulls byte-identically with skopeo), honours
// --dry-run, and its grace period protects freshly pushed blobs. It is safe
// while pushes continue, and a node's cache never makes a push believe that a
// blob gc deleted is still stored.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AzuriteServer } from '../helpers/azurite.ts';
import { assertSameImage, layoutBlobs, OciLayoutWriter, readLayoutBlob } from '../helpers/oci-layout.ts';
import { errorCode, RegistryClient } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { TUG } from '../helpers/tug-process.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);

interface GcReport {
  blobsDeleted: number;
  blobsRenewed: number;
  blobsKept: number;
  linksDeleted: number;
  uploadsDeleted: number;
  deleted: string[];
}

describe('garbage collection', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let client: RegistryClient;
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-gc-'));
    azurite = await AzuriteServer.start();
    registry = await startRegistry({ connectionString: azurite.connectionString });
    client = new RegistryClient(registry.url);
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
    await rm(work, { recursive: true, force: true });
  });

  /** Azure's Last-Modified has whole seconds: what a test wants gc to see as old must be a couple of seconds old. */
  async function ageBeyond(graceMs: number): Promise<void> {
    const since = Date.now();
    await waitFor(() => Date.now() - since > graceMs + 2000, { timeout: graceMs + 5000, interval: 100, what: 'blobs to age past the grace period' });
  }

  async function gc(...args: string[]): Promise<GcReport> {
    return (await gcRun(...args)).report;
  }

  async function gcRun(...args: string[]): Promise<{ report: GcReport; stderr: string }> {
    const { stdout, stderr } = await run(process.execPath, [TUG, 'registry', 'gc', '--container', 'registry', ...args], {
      env: { ...process.env, AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString },
      timeout: 60_000,
    });
    const line = stdout.split('\n').find((l) => l.includes('"garbage collection'));
    assert.ok(line, `gc printed its report: ${stdout}`);
    return { report: JSON.parse(line) as GcReport, stderr };
  }

  const blobData = () => azurite.blobNames('registry', 'docker/registry/v2/blobs/');

  it('deletes only what no manifest references, honours --dry-run, and the kept image still pulls byte-identically', async () => {
    const source = join(work, 'kept');
    const image = new OciLayoutWriter(source);
    const shared = { 'shared.bin': randomBytes(20_000) };
    const kept = await image.writeImage([shared, { 'kept.txt': 'kept\n' }]);
    await image.finish(kept, 'v1');
    await skopeoCopy(`oci:${source}:v1`, `docker://${registry.host}/gc/kept:v1`);

    // A second image sharing a layer, then deleted: its own layer and config become garbage.
    const other = new OciLayoutWriter(join(work, 'dropped'));
    const dropped = await other.writeImage([shared, { 'dropped.bin': randomBytes(30_000) }]);
    await other.finish(dropped, 'v1');
    await skopeoCopy(`oci:${join(work, 'dropped')}:v1`, `docker://${registry.host}/gc/dropped:v1`);
    assert.equal((await client.request('DELETE', `/v2/gc/dropped/manifests/${dropped.digest}`)).status, 202);
    const orphan = await client.pushBlob('gc/orphan', randomBytes(1000));
    await ageBeyond(0);

    const before = await blobData();
    const dry = await gc('--dry-run', '--grace-period', '0');
    const keptBlobs = await layoutBlobs(source);
    const droppedOnly = (await layoutBlobs(join(work, 'dropped'))).filter((d) => !keptBlobs.includes(d));
    const wouldDelete = (digest: string) => dry.deleted.some((p) => p.includes(digest.slice(7)));
    assert.ok(wouldDelete(orphan), 'the orphan blob would be deleted');
    assert.equal(droppedOnly.length, 3, 'the deleted image\'s manifest, config and own layer');
    for (const digest of droppedOnly) assert.ok(wouldDelete(digest), `${digest} of the deleted image would be deleted`);
    for (const digest of keptBlobs) assert.ok(!wouldDelete(digest), `${digest} of the kept image is kept (the shared layer too)`);
    assert.equal(dry.deleted.length, droppedOnly.length + 1);
    assert.deepEqual(await blobData(), before, '--dry-run deletes nothing');

    const { report, stderr } = await gcRun('--grace-period', '0');
    assert.equal(report.blobsDeleted, dry.deleted.length);
    // Not a terminal: a line per phase and per 10 % step, on stderr.
    assert.match(stderr, /^gc: listing repository links: done, \d+ repositories, \d+ manifests$/m);
    assert.match(stderr, /^gc: marking what manifests reference: \d+\/\d+ \(100%\)$/m);
    assert.match(stderr, new RegExp(`^gc: deleting blobs: done, ${report.blobsDeleted} deleted, 0 renewed by pushes and kept$`, 'm'));
    assert.ok(!stderr.includes('\r'), 'no in-place redraws when stderr is not a terminal');
    assert.equal((await blobData()).length, before.length - report.blobsDeleted);
    assert.ok(report.linksDeleted > 0, 'the repositories\' links to deleted blobs went too');
    assert.equal((await client.request('HEAD', `/v2/gc/orphan/blobs/${orphan}`)).status, 404);

    const pulled = join(work, 'pulled');
    await skopeoCopy(`docker://${registry.host}/gc/kept:v1`, `oci:${pulled}:v1`);
    for (const digest of await layoutBlobs(source)) {
      assert.ok((await readLayoutBlob(pulled, digest)).equals(await readLayoutBlob(source, digest)), `${digest} survived gc byte-identically`);
    }
  });

  it('keeps blobs younger than the grace period, which protects pushes in progress', async () => {
    const young = await client.pushBlob('gc/in-progress', randomBytes(1000));
    const report = await gc();
    assert.ok(!report.deleted.some((p) => p.includes(young.slice(7))));
    assert.equal((await client.request('HEAD', `/v2/gc/in-progress/blobs/${young}`)).status, 200);
  });

  it('deletes what uploads left under _uploads/ once older than --upload-expiry, and nothing younger', async () => {
    // What a registry node killed between committing its staging blob and removing it leaves behind.
    const container = azurite.container('registry');
    const uploadData = (id: string) => `docker/registry/v2/repositories/gc/dead-node/_uploads/${id}/data`;
    const old = uploadData('00000000-0000-4000-8000-000000000001');
    await container.getBlockBlobClient(old).upload('staged bytes', 12);
    // Old enough that the fresh one, written next, stays younger than the expiry while gc starts up on a loaded machine.
    await ageBeyond(4000);
    const fresh = uploadData('00000000-0000-4000-8000-000000000002');
    await container.getBlockBlobClient(fresh).upload('staged bytes', 12);
    const uploads = () => azurite.blobNames('registry', 'docker/registry/v2/repositories/gc/dead-node/_uploads/');

    const dry = await gc('--dry-run', '--upload-expiry', '4s');
    assert.equal(dry.uploadsDeleted, 1);
    assert.deepEqual(await uploads(), [old, fresh], '--dry-run deletes nothing');
    const report = await gc('--upload-expiry', '4s');
    assert.equal(report.uploadsDeleted, 1);
    assert.deepEqual(await uploads(), [fresh]);
    const catalog = await (await client.request('GET', '/v2/_catalog')).json() as { repositories: string[] };
    assert.ok(!catalog.repositories.includes('gc/dead-node'), 'upload state alone makes no repository');
  });

  it('never lets a node\'s cache stand in for Azure on a write: a re-push after gc really stores the blob, and a manifest naming a deleted blob is refused on every node', async () => {
    const cacheDir = await mkdtemp(join(work, 'cache-'));
    const cached = await startRegistry({ connectionString: azurite.connectionString, args: ['--cache-dir', cacheDir] });
    try {
      const node = new RegistryClient(cached.url);
      const layer = randomBytes(50_000);
      const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
      const layerDigest = await node.pushBlob('gc/cached', layer);
      const configDigest = await node.pushBlob('gc/cached', config);
      for (const digest of [layerDigest, configDigest]) await (await node.request('GET', `/v2/gc/cached/blobs/${digest}`)).arrayBuffer();
      await ageBeyond(0);
      const report = await gc('--grace-period', '0');
      const stored = (digest: string) => blobData().then((names) => names.some((n) => n.includes(digest.slice(7))));
      assert.ok(report.deleted.some((p) => p.includes(layerDigest.slice(7))) && !(await stored(layerDigest)), 'gc deleted the layer from Azure');
      assert.ok(!(await stored(configDigest)), 'gc deleted the config from Azure');

      // The node still has both cached; its word is not taken for what Azure holds.
      assert.equal(await node.pushBlob('gc/cached', layer), layerDigest);
      assert.ok(await stored(layerDigest), 'the re-push wrote the layer to Azure again');
      const manifest = {
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: layer.length }],
      };
      for (const registryClient of [node, client]) {
        const res = await registryClient.putManifest('gc/cached', 'v1', manifest, manifest.mediaType);
        assert.equal(res.status, 400, `${registryClient.base} refuses the manifest`);
        assert.equal(await errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
      }
      const mount = await node.request('POST', `/v2/gc/elsewhere/blobs/uploads/?mount=${configDigest}&from=gc/cached`);
      assert.equal(mount.status, 202, 'a blob gc deleted is not mounted: a fresh upload instead');
    } finally {
      await cached.close();
    }
  });

  it('lets pushes continue during gc: every push completes with all it references stored, or fails, and every pushed image pulls intact', async () => {
    const grace = 1000;
    const images: { source: string; repository: string }[] = [];
    const shared = { 'shared.bin': randomBytes(30_000) };
    for (let i = 0; i < 6; i++) {
      const source = join(work, `race-${i}`);
      const image = new OciLayoutWriter(source);
      const top = await image.writeImage([shared, { [`own-${i}.bin`]: randomBytes(20_000) }]);
      await image.finish(top, 'v1');
      const repository = `gc/race-${i}`;
      // Every blob already stored and linked but unreferenced, and old: what gc deletes, and what a push skips uploading.
      for (const digest of await layoutBlobs(source)) {
        if (digest !== top.digest) await client.pushBlob(repository, await readLayoutBlob(source, digest));
      }
      images.push({ source, repository });
    }
    await ageBeyond(grace);

    let pushing = true;
    const reports: GcReport[] = [];
    const collector = (async () => {
      while (pushing || reports.length < 2) reports.push(await gc('--grace-period', `${grace}ms`));
    })();
    const failed: typeof images = [];
    const queue = [...images];
    const pusher = async () => {
      for (let next = queue.shift(); next; next = queue.shift()) {
        await skopeoCopy(`oci:${next.source}:v1`, `docker://${registry.host}/${next.repository}:v1`).catch(() => failed.push(next));
      }
    };
    try {
      await Promise.all([pusher(), pusher()]);
    } finally {
      pushing = false;
      await collector;
    }
    assert.ok(reports.reduce((sum, r) => sum + r.blobsDeleted + r.blobsRenewed, 0) > 0, 'gc found the unreferenced blobs while the pushes ran');
    // A failed push is retried once gc is done, as a client would.
    for (const image of failed) await skopeoCopy(`oci:${image.source}:v1`, `docker://${registry.host}/${image.repository}:v1`);
    await gc('--grace-period', '0');
    for (const [i, image] of images.entries()) {
      const pulled = join(work, `race-pulled-${i}`);
      await skopeoCopy(`docker://${registry.host}/${image.repository}:v1`, `oci:${pulled}:v1`);
      await assertSameImage(image.source, pulled, 'v1');
    }
  });

  it('draws its progress on a terminal as one line updated in place', async () => {
    // util-linux's script(1) gives the process a pseudo-terminal.
    const quote = (arg: string) => `'${arg.replace(/'/g, `'\\''`)}'`;
    const command = [process.execPath, TUG, 'registry', 'gc', '--container', 'registry', '--dry-run'].map(quote).join(' ');
    const { stdout } = await run('script', ['-qec', command, '/dev/null'], {
      env: { ...process.env, AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString },
      timeout: 60_000,
    });
    assert.match(stdout, /\r\x1b\[Kgc: listing repository links: \d+/, 'redrawn in place');
    assert.match(stdout, /\r\x1b\[Kgc: listing blobs: done, \d+ kept, \d+ unreferenced\r?\n/, 'a finished phase stays on its own line');
  });
});
