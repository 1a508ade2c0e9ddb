// `tug registry gc` as operators run it (the real CLI process) against
// Azurite: it deletes what no manifest references, keeps everything that is
// referenced (the image still pulls byte-identically with skopeo), honours
// --dry-run, and its grace period protects freshly pushed blobs.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AzuriteServer } from '../helpers/azurite.ts';
import { layoutBlobs, OciLayoutWriter, readLayoutBlob } from '../helpers/oci-layout.ts';
import { RegistryClient } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeoCopy } from '../helpers/skopeo.ts';
import { TUG } from '../helpers/tug-process.ts';

const run = promisify(execFile);

interface GcReport {
  blobsDeleted: number;
  blobsKept: number;
  linksDeleted: number;
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

  async function gc(...args: string[]): Promise<GcReport> {
    const { stdout } = await run(process.execPath, [TUG, 'registry', 'gc', '--container', 'registry', ...args], {
      env: { ...process.env, AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString },
      timeout: 60_000,
    });
    const line = stdout.split('\n').find((l) => l.includes('"garbage collection'));
    assert.ok(line, `gc printed its report: ${stdout}`);
    return JSON.parse(line) as GcReport;
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

    const report = await gc('--grace-period', '0');
    assert.equal(report.blobsDeleted, dry.deleted.length);
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
});
