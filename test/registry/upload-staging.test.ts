// A chunked upload is staged in Azure while its bytes arrive (under the
// repository's `_uploads/`, uncommitted, so out of sight), and once the PUT's
// digest is verified it is copied to the digest's path inside Azure — the
// blob is never written a second time by the registry. Nothing staged is
// ever visible under a content address, a wrong digest stores nothing, and a
// chunk cut short by the client stays staged, and a registry killed mid-chunk
// leaves nothing visible and resumes from its spool.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { request, type ClientRequest } from 'node:http';
import { AzuriteServer } from '../helpers/azurite.ts';
import { scrape, valueOf } from '../helpers/metrics.ts';
import { errorCode, RegistryClient, sha256 } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { waitFor } from '../helpers/wait.ts';

describe('upload staging', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let client: RegistryClient;

  before(async () => {
    azurite = await AzuriteServer.start();
    // Small blocks, so a chunk of unknown length has blocks staged in Azure while it still arrives.
    registry = await startRegistry({ connectionString: azurite.connectionString, args: ['--block-size', '64KiB'] });
    client = new RegistryClient(registry.url);
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
  });

  const blobPath = (digest: string) => `docker/registry/v2/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`;
  const stagingPath = (repo: string, location: string) => `docker/registry/v2/repositories/${repo}/_uploads/${location.split('/').pop()}/data`;
  const committed = (prefix: string) => azurite.blobNames('registry', prefix);
  /** Bytes in blocks staged (not committed) on the upload's staging blob. */
  const stagedBytes = async (path: string) => {
    const list = await azurite.container('registry').getBlockBlobClient(path).getBlockList('uncommitted').catch(() => null);
    return (list?.uncommittedBlocks ?? []).reduce((sum, block) => sum + block.size, 0);
  };
  const copies = async () => valueOf((await scrape(registry.adminPort!)).samples, 'tug_registry_azure_operations_total', { operation: 'copy', outcome: 'ok' }) ?? 0;

  function openPatch(location: string, headers: Record<string, string | number>): ClientRequest {
    const req = request({ host: '127.0.0.1', port: registry.port, method: 'PATCH', path: location, headers: { 'Content-Type': 'application/octet-stream', ...headers } });
    req.on('error', () => {});
    return req;
  }

  function finish(req: ClientRequest, rest: Buffer): Promise<number> {
    return new Promise((resolve, reject) => {
      req.once('response', (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.once('error', reject);
      req.end(rest);
    });
  }

  it('stages a chunk in Azure while it still arrives, out of sight, and completes it with one copy that leaves nothing staged', async () => {
    const content = randomBytes(400_000);
    const digest = sha256(content);
    const location = await client.startUpload('staging/streamed');
    const staging = stagingPath('staging/streamed', location);
    const copiesBefore = await copies();

    const patch = openPatch(location, { 'Transfer-Encoding': 'chunked' });
    patch.write(content.subarray(0, 300_000));
    await waitFor(async () => (await stagedBytes(staging)) >= 128 * 1024, { timeout: 10_000, what: 'blocks staged while the chunk arrives' });
    assert.deepEqual(await committed('docker/registry/v2/repositories/staging/streamed/_uploads/'), [], 'staged blocks are not a visible blob');
    assert.deepEqual(await committed(blobPath(digest)), [], 'nothing under the content address');
    assert.equal(await finish(patch, content.subarray(300_000)), 202);
    // The last blocks may still be on their way when the PATCH is answered (the spool has them); the PUT waits for them.
    await waitFor(async () => (await stagedBytes(staging)) === content.length, { timeout: 5000, what: 'every byte staged, with no PUT yet' });

    assert.equal((await client.request('PUT', `${location}?digest=${digest}`)).status, 201);
    assert.equal(await copies(), copiesBefore + 1, 'the blob was copied into place inside Azure');
    const get = await client.request('GET', `/v2/staging/streamed/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
    await waitFor(async () => (await committed('docker/registry/v2/repositories/staging/streamed/_uploads/')).length === 0, { timeout: 5000, what: 'the staging blob to be removed' });
  });

  it('streams chunks of known length into staged blocks as they arrive, each PATCH staged before it is answered', async () => {
    const content = randomBytes(500_000);
    const digest = sha256(content);
    const location = await client.startUpload('staging/parts');
    const staging = stagingPath('staging/parts', location);
    const first = await client.request('PATCH', location, { headers: { 'Content-Range': '0-199999' }, body: content.subarray(0, 200_000) });
    assert.equal(first.status, 202);
    assert.equal(await stagedBytes(staging), 200_000);
    const second = await client.request('PATCH', location, { headers: { 'Content-Range': '200000-499999' }, body: content.subarray(200_000) });
    assert.equal(second.status, 202);
    const blocks = (await azurite.container('registry').getBlockBlobClient(staging).getBlockList('uncommitted')).uncommittedBlocks ?? [];
    assert.equal(blocks.reduce((sum, b) => sum + b.size, 0), 500_000);
    assert.ok(blocks.every((b) => b.size <= 64 * 1024), 'cut into --block-size blocks');
    assert.equal(blocks.length, Math.ceil(200_000 / 65536) + Math.ceil(300_000 / 65536), 'each PATCH starts its own blocks');
    const copiesBefore = await copies();
    assert.equal((await client.request('PUT', `${location}?digest=${digest}`)).status, 201);
    assert.equal(await copies(), copiesBefore + 1);
    const get = await client.request('GET', `/v2/staging/parts/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
  });

  it('keeps what a chunk cut short by the client staged, and completes the resumed upload with the copy', async () => {
    const content = randomBytes(300_000);
    const digest = sha256(content);
    const location = await client.startUpload('staging/cut');
    const staging = stagingPath('staging/cut', location);
    const patch = openPatch(location, { 'Transfer-Encoding': 'chunked' });
    patch.write(content.subarray(0, 120_000));
    await waitFor(async () => (await client.request('GET', location)).headers.get('range') === '0-119999', { timeout: 10_000, what: 'the first bytes to reach the registry' });
    patch.destroy();
    await waitFor(async () => (await stagedBytes(staging)) === 120_000, { timeout: 5000, what: 'the bytes that arrived to be staged' });
    const rest = await client.request('PATCH', location, { headers: { 'Content-Range': '120000-299999' }, body: content.subarray(120_000) });
    assert.equal(rest.status, 202);
    const copiesBefore = await copies();
    assert.equal((await client.request('PUT', `${location}?digest=${digest}`)).status, 201);
    assert.equal(await copies(), copiesBefore + 1, 'completed from the staged blob, not from the spool');
    const get = await client.request('GET', `/v2/staging/cut/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
  });

  it('refuses a wrong digest with nothing committed, staged or stored', async () => {
    const content = randomBytes(200_000);
    const claimed = sha256(Buffer.concat([content, Buffer.from('x')]));
    const location = await client.startUpload('staging/wrong');
    assert.equal((await client.request('PATCH', location, { body: content })).status, 202);
    const put = await client.request('PUT', `${location}?digest=${claimed}`);
    assert.equal(put.status, 400);
    assert.equal(await errorCode(put), 'DIGEST_INVALID');
    assert.deepEqual(await committed('docker/registry/v2/repositories/staging/wrong/_uploads/'), []);
    assert.deepEqual(await committed(blobPath(claimed)), []);
    assert.deepEqual(await committed(blobPath(sha256(content))), [], 'not under the digest of what was sent either');
    assert.equal((await client.request('GET', location)).status, 404, 'the upload is over');
  });

  it('leaves nothing visible when the registry is killed mid-chunk, and the upload resumes from its spool', async () => {
    const content = randomBytes(400_000);
    const digest = sha256(content);
    const location = await client.startUpload('staging/killed');
    const patch = openPatch(location, { 'Content-Length': content.length });
    patch.write(content.subarray(0, 250_000));
    await waitFor(async () => {
      const res = await client.request('GET', location);
      return res.status === 204 && res.headers.get('range') === '0-249999';
    }, { timeout: 10_000, what: 'the first bytes to reach the registry' });

    await registry.stop('SIGKILL');
    patch.destroy();
    registry = await startRegistry({ connectionString: azurite.connectionString, port: registry.port, uploadDir: registry.uploadDir, args: ['--block-size', '64KiB'] });
    assert.deepEqual(await committed('docker/registry/v2/repositories/staging/killed/'), [], 'no staged blob, no link');
    assert.deepEqual(await committed(blobPath(digest)), []);
    assert.equal((await client.request('HEAD', `/v2/staging/killed/blobs/${digest}`)).status, 404);

    const status = await client.request('GET', location);
    assert.equal(status.headers.get('range'), '0-249999', 'the spool kept what arrived');
    const rest = await client.request('PATCH', location, { headers: { 'Content-Range': '250000-399999' }, body: content.subarray(250_000) });
    assert.equal(rest.status, 202);
    assert.equal((await client.request('PUT', `${location}?digest=${digest}`)).status, 201);
    const get = await client.request('GET', `/v2/staging/killed/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
  });
});
