// What survives trouble: a client that disconnects mid-chunk, a registry that
// crashes mid-upload, and an Azure outage. Nothing committed is lost, nothing
// half-written becomes visible, and an interrupted upload can be resumed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import { AzuriteServer } from '../helpers/azurite.ts';
import { errorCode, RegistryClient, sha256 } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { waitFor } from '../helpers/wait.ts';

describe('restarts and outages', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let client: RegistryClient;

  before(async () => {
    azurite = await AzuriteServer.start();
    // Small blocks, so an interrupted upload has blocks staged in Azure when it is cut.
    registry = await startRegistry({ connectionString: azurite.connectionString, args: ['--block-size', '64KiB'] });
    client = new RegistryClient(registry.url);
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
  });

  const storedBlobs = () => azurite.blobNames('registry', 'docker/registry/v2/blobs/');

  async function uploadedBytes(location: string): Promise<number> {
    const res = await client.request('GET', location);
    assert.equal(res.status, 204);
    return Number(/^0-(\d+)$/.exec(res.headers.get('range') ?? '')![1]) + 1;
  }

  /** Sends `first` as the start of a PATCH body, waits until the registry has it, then cuts the connection. */
  async function patchAndDisconnect(location: string, first: Buffer): Promise<void> {
    const req = request({ host: '127.0.0.1', port: registry.port, method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream', 'Transfer-Encoding': 'chunked' } });
    req.on('error', () => {});
    req.write(first);
    await waitFor(async () => (await uploadedBytes(location)) === first.length, { timeout: 5000, what: 'the first bytes to reach the spool' });
    req.destroy();
  }

  it('keeps the bytes of a chunk cut short, shows no blob, and lets the client resume from there', async () => {
    const content = randomBytes(300_000);
    const digest = sha256(content);
    const location = await client.startUpload('interrupted');
    await patchAndDisconnect(location, content.subarray(0, 120_000));
    assert.equal(await uploadedBytes(location), 120_000);
    assert.equal((await client.request('HEAD', `/v2/interrupted/blobs/${digest}`)).status, 404);
    assert.ok(!(await storedBlobs()).some((name) => name.includes(digest.slice(7))), 'no visible blob');
    const rest = await client.request('PATCH', location, { headers: { 'Content-Range': '120000-299999' }, body: content.subarray(120_000) });
    assert.equal(rest.status, 202);
    assert.equal((await client.request('PUT', `${location}?digest=${digest}`)).status, 201);
    const get = await client.request('GET', `/v2/interrupted/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
  });

  it('shows nothing of a monolithic upload cut mid-way (its staged blocks stay uncommitted), and takes it again whole', async () => {
    const content = randomBytes(400_000);
    const digest = sha256(content);
    const name = `docker/registry/v2/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`;
    const req = request({ host: '127.0.0.1', port: registry.port, method: 'POST', path: `/v2/monolithic/blobs/uploads/?digest=${digest}`, headers: { 'Content-Length': content.length } });
    req.on('error', () => {});
    req.write(content.subarray(0, 250_000));
    const staged = async () => (await azurite.container('registry').getBlockBlobClient(name).getBlockList('uncommitted')).uncommittedBlocks?.length ?? 0;
    await waitFor(async () => (await staged()) >= 2, { timeout: 5000, what: 'blocks staged in Azure' });
    req.destroy();
    await waitFor(() => registry.logs().some((l) => String(l.path).startsWith('/v2/monolithic/') && l.complete === false), { timeout: 5000, what: 'the registry to log the cut request' });
    assert.equal((await client.request('HEAD', `/v2/monolithic/blobs/${digest}`)).status, 404);
    assert.ok(!(await storedBlobs()).includes(name), 'no committed blob');
    const again = await client.request('POST', `/v2/monolithic/blobs/uploads/?digest=${digest}`, { body: content });
    assert.equal(again.status, 201);
    const get = await client.request('GET', `/v2/monolithic/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
  });

  it('resumes an upload after the registry crashed mid-upload, and loses nothing committed', async () => {
    const committed = randomBytes(50_000);
    const committedDigest = await client.pushBlob('restart', committed);
    const content = randomBytes(400_000);
    const digest = sha256(content);
    const location = await client.startUpload('restart');
    assert.equal((await client.request('PATCH', location, { body: content.subarray(0, 250_000) })).status, 202);

    await registry.stop('SIGKILL');
    registry = await startRegistry({ connectionString: azurite.connectionString, port: registry.port, uploadDir: registry.uploadDir });

    assert.equal(await uploadedBytes(location), 250_000, 'the spool survived the crash');
    const rest = await client.request('PATCH', location, { headers: { 'Content-Range': '250000-399999' }, body: content.subarray(250_000) });
    assert.equal(rest.status, 202);
    assert.equal((await client.request('PUT', `${location}?digest=${digest}`)).status, 201);
    const get = await client.request('GET', `/v2/restart/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
    const old = await client.request('GET', `/v2/restart/blobs/${committedDigest}`);
    assert.ok(Buffer.from(await old.arrayBuffer()).equals(committed), 'what was committed before the crash is intact');
  });

  it('answers 503 UNAVAILABLE while Azure is down, keeps uploads, and serves everything again when it is back', async () => {
    const committed = randomBytes(20_000);
    const committedDigest = await client.pushBlob('outage', committed);
    const content = randomBytes(80_000);
    const digest = sha256(content);
    const location = await client.startUpload('outage');
    await azurite.stop();
    try {
      const get = await client.request('GET', `/v2/outage/blobs/${committedDigest}`);
      assert.equal(get.status, 503);
      assert.equal(await errorCode(get), 'UNAVAILABLE');
      const manifest = await client.putManifest('outage', 'v1', { schemaVersion: 2, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: committedDigest, size: 2 }, layers: [] }, 'application/vnd.oci.image.manifest.v1+json');
      assert.equal(manifest.status, 503);
      await manifest.arrayBuffer();
      // The chunk lands in the node's spool; completing needs Azure and fails retryably.
      assert.equal((await client.request('PATCH', location, { body: content })).status, 202);
      const put = await client.request('PUT', `${location}?digest=${digest}`);
      assert.equal(put.status, 503);
      await put.arrayBuffer();
      assert.equal(registry.child.exitCode, null, 'the registry is still running');
    } finally {
      await azurite.resume();
    }
    const retried = await client.request('PUT', `${location}?digest=${digest}`);
    assert.equal(retried.status, 201);
    const get = await client.request('GET', `/v2/outage/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
    const old = await client.request('GET', `/v2/outage/blobs/${committedDigest}`);
    assert.ok(Buffer.from(await old.arrayBuffer()).equals(committed));
  });
});
