// The blob half of the protocol against the real registry process on Azurite:
// the version check, every way to upload (monolithic, POST+PUT, chunked with
// status and out-of-order refusal), digest verification, cross-repository
// mount, ranged reads and deletion.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AzuriteServer } from '../helpers/azurite.ts';
import { get } from '../helpers/http.ts';
import { errorCode, RegistryClient, sha256, sha512 } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';

describe('blobs and uploads', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let client: RegistryClient;

  before(async () => {
    azurite = await AzuriteServer.start();
    registry = await startRegistry({ connectionString: azurite.connectionString, connectionStringFromEnv: true, args: ['--block-size', '64KiB'] });
    client = new RegistryClient(registry.url);
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
  });

  /** Committed blob names under the blob store. */
  const storedBlobs = () => azurite.blobNames('registry', 'docker/registry/v2/blobs/');
  const dataName = (digest: string) => `docker/registry/v2/blobs/sha256/${digest.slice(7, 9)}/${digest.slice(7)}/data`;

  it('answers the version check with Docker-Distribution-API-Version', async () => {
    const res = await client.request('GET', '/v2/');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-distribution-api-version'), 'registry/2.0');
    assert.deepEqual(await res.json(), {});
  });

  it('stores a monolithic upload (POST with digest) and serves it by GET and HEAD', async () => {
    const content = randomBytes(200_000); // several 64 KiB blocks
    const digest = sha256(content);
    const res = await client.request('POST', `/v2/mono/blobs/uploads/?digest=${digest}`, { body: content });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('location'), `/v2/mono/blobs/${digest}`);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const head = await client.request('HEAD', `/v2/mono/blobs/${digest}`);
    assert.equal(head.status, 200);
    assert.equal(head.headers.get('content-length'), String(content.length));
    assert.equal(head.headers.get('docker-content-digest'), digest);
    const get = await client.request('GET', `/v2/mono/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
    assert.ok((await storedBlobs()).includes(dataName(digest)));
  });

  it('serves byte ranges with 206 and refuses an unsatisfiable range with 416', async () => {
    const content = Buffer.from('0123456789abcdef');
    const digest = await client.pushBlob('ranges', content);
    const part = await client.request('GET', `/v2/ranges/blobs/${digest}`, { headers: { Range: 'bytes=4-9' } });
    assert.equal(part.status, 206);
    assert.equal(part.headers.get('content-range'), 'bytes 4-9/16');
    assert.equal(await part.text(), '456789');
    const tail = await client.request('GET', `/v2/ranges/blobs/${digest}`, { headers: { Range: 'bytes=-3' } });
    assert.equal(await tail.text(), 'def');
    const beyond = await client.request('GET', `/v2/ranges/blobs/${digest}`, { headers: { Range: 'bytes=16-20' } });
    assert.equal(beyond.status, 416);
    assert.equal(beyond.headers.get('content-range'), 'bytes */16');
    assert.equal(await errorCode(beyond), 'RANGE_INVALID');
  });

  it('completes a POST then PUT upload with the whole body in the PUT', async () => {
    const content = randomBytes(100_000);
    const digest = sha256(content);
    const location = await client.startUpload('postput');
    const res = await client.request('PUT', `${location}?digest=${digest}`, { body: content });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const get = await client.request('GET', `/v2/postput/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
  });

  it('takes chunks in order with Content-Range, reports the upload status, and refuses an out-of-order chunk with 416', async () => {
    const content = randomBytes(150_000);
    const digest = sha256(content);
    const location = await client.startUpload('chunked');
    const first = await client.request('PATCH', location, {
      headers: { 'Content-Type': 'application/octet-stream', 'Content-Range': '0-59999' },
      body: content.subarray(0, 60_000),
    });
    assert.equal(first.status, 202);
    assert.equal(first.headers.get('range'), '0-59999');
    assert.equal(first.headers.get('location'), location);
    const status = await client.request('GET', location);
    assert.equal(status.status, 204);
    assert.equal(status.headers.get('range'), '0-59999');
    assert.ok(status.headers.get('docker-upload-uuid'));

    const skipping = await client.request('PATCH', location, { headers: { 'Content-Range': '70000-79999' }, body: content.subarray(70_000, 80_000) });
    assert.equal(skipping.status, 416);
    assert.equal(skipping.headers.get('range'), '0-59999');
    assert.equal(await errorCode(skipping), 'RANGE_INVALID');
    const repeating = await client.request('PATCH', location, { headers: { 'Content-Range': '0-9999' }, body: content.subarray(0, 10_000) });
    assert.equal(repeating.status, 416);
    await repeating.arrayBuffer();

    const second = await client.request('PATCH', location, { headers: { 'Content-Range': '60000-149999' }, body: content.subarray(60_000) });
    assert.equal(second.status, 202);
    assert.equal(second.headers.get('range'), '0-149999');
    assert.equal((await storedBlobs()).includes(dataName(digest)), false, 'nothing visible before the PUT');
    const done = await client.request('PUT', `${location}?digest=${digest}`);
    assert.equal(done.status, 201);
    const get = await client.request('GET', `/v2/chunked/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
    const gone = await client.request('GET', location);
    assert.equal(gone.status, 404);
    assert.equal(await errorCode(gone), 'BLOB_UPLOAD_UNKNOWN');
  });

  it('accepts chunks without Content-Range (docker streams one PATCH) and a final chunk in the PUT', async () => {
    const content = randomBytes(90_000);
    const digest = sha256(content);
    const location = await client.startUpload('streamed');
    assert.equal((await client.request('PATCH', location, { body: content.subarray(0, 50_000) })).status, 202);
    const res = await client.request('PUT', `${location}?digest=${digest}`, { body: content.subarray(50_000) });
    assert.equal(res.status, 201);
    const get = await client.request('GET', `/v2/streamed/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
  });

  it('verifies sha512 digests too', async () => {
    const content = randomBytes(10_000);
    const digest = sha512(content);
    const res = await client.request('POST', `/v2/sha512/blobs/uploads/?digest=${digest}`, { body: content });
    assert.equal(res.status, 201);
    const get = await client.request('GET', `/v2/sha512/blobs/${digest}`);
    assert.ok(Buffer.from(await get.arrayBuffer()).equals(content));
  });

  it('refuses a wrong digest with DIGEST_INVALID and stores nothing, monolithic or chunked', async () => {
    const before = await storedBlobs();
    const content = randomBytes(150_000);
    const claimed = sha256('something else');
    const mono = await client.request('POST', `/v2/wrong/blobs/uploads/?digest=${claimed}`, { body: content });
    assert.equal(mono.status, 400);
    assert.equal(await errorCode(mono), 'DIGEST_INVALID');
    const location = await client.startUpload('wrong');
    await (await client.request('PATCH', location, { body: content })).arrayBuffer();
    const chunked = await client.request('PUT', `${location}?digest=${claimed}`);
    assert.equal(chunked.status, 400);
    assert.equal(await errorCode(chunked), 'DIGEST_INVALID');
    assert.deepEqual(await storedBlobs(), before, 'no blob appeared');
    const blob = await client.request('HEAD', `/v2/wrong/blobs/${claimed}`);
    assert.equal(blob.status, 404);
    const real = await client.request('HEAD', `/v2/wrong/blobs/${sha256(content)}`);
    assert.equal(real.status, 404);
  });

  it('mounts a blob from another repository without uploading it, and falls back to an upload when it cannot', async () => {
    const digest = await client.pushBlob('mount/source', randomBytes(5000));
    const mounted = await client.request('POST', `/v2/mount/target/blobs/uploads/?mount=${digest}&from=mount/source`);
    assert.equal(mounted.status, 201);
    assert.equal(mounted.headers.get('location'), `/v2/mount/target/blobs/${digest}`);
    assert.equal((await client.request('HEAD', `/v2/mount/target/blobs/${digest}`)).status, 200);

    const elsewhere = sha256('never pushed');
    const fallback = await client.request('POST', `/v2/mount/target/blobs/uploads/?mount=${elsewhere}&from=mount/source`);
    assert.equal(fallback.status, 202);
    assert.match(fallback.headers.get('location') ?? '', /^\/v2\/mount\/target\/blobs\/uploads\/[0-9a-f-]{36}$/);
  });

  it('keeps repositories apart: a blob pushed to one is unknown in another', async () => {
    const digest = await client.pushBlob('apart/one', randomBytes(1000));
    const res = await client.request('GET', `/v2/apart/two/blobs/${digest}`);
    assert.equal(res.status, 404);
    assert.equal(await errorCode(res), 'BLOB_UNKNOWN');
  });

  it('deletes a blob from a repository (202), after which it is unknown there', async () => {
    const digest = await client.pushBlob('deleting', randomBytes(1000));
    const res = await client.request('DELETE', `/v2/deleting/blobs/${digest}`);
    assert.equal(res.status, 202);
    assert.equal((await client.request('HEAD', `/v2/deleting/blobs/${digest}`)).status, 404);
    const again = await client.request('DELETE', `/v2/deleting/blobs/${digest}`);
    assert.equal(again.status, 404);
    assert.equal(await errorCode(again), 'BLOB_UNKNOWN');
  });

  it('cancels an upload with DELETE', async () => {
    const location = await client.startUpload('cancel');
    await (await client.request('PATCH', location, { body: randomBytes(1000) })).arrayBuffer();
    assert.equal((await client.request('DELETE', location)).status, 204);
    const status = await client.request('GET', location);
    assert.equal(status.status, 404);
    assert.equal(await errorCode(status), 'BLOB_UPLOAD_UNKNOWN');
  });

  it('refuses invalid names, digests and upload ids with the spec codes, never touching storage paths', async () => {
    const digest = sha256('x');
    const cases: [string, string, number, string][] = [
      ['GET', `/v2/foo/../bar/blobs/${digest}`, 400, 'NAME_INVALID'],
      ['GET', `/v2/foo/%2e%2e/bar/blobs/${digest}`, 400, 'NAME_INVALID'],
      ['GET', `/v2/Upper/blobs/${digest}`, 400, 'NAME_INVALID'],
      ['GET', `/v2/a//b/blobs/${digest}`, 400, 'NAME_INVALID'],
      ['GET', '/v2/ok/blobs/sha256:1234', 400, 'DIGEST_INVALID'],
      ['GET', '/v2/ok/blobs/md5:d41d8cd98f00b204e9800998ecf8427e', 400, 'DIGEST_INVALID'],
      ['GET', '/v2/ok/blobs/uploads/../../etc', 404, 'UNSUPPORTED'],
      ['GET', '/v2/ok/blobs/uploads/..', 404, 'BLOB_UPLOAD_UNKNOWN'],
      ['GET', '/v2/ok/blobs/uploads/not-a-uuid', 404, 'BLOB_UPLOAD_UNKNOWN'],
      ['PATCH', '/v2/ok/blobs/uploads/00000000-0000-4000-8000-000000000000', 404, 'BLOB_UPLOAD_UNKNOWN'],
      ['POST', `/v2/ok/blobs/uploads/?digest=sha256:zz`, 400, 'DIGEST_INVALID'],
      ['PUT', `/v2/ok/blobs/${digest}`, 405, 'UNSUPPORTED'],
      ['GET', '/v2/ok/nothing-here', 404, 'UNSUPPORTED'],
    ];
    for (const [method, path, status, code] of cases) {
      // Sent as written (node:http), since fetch would resolve `..` before sending.
      const res = await get(registry.port, registry.host, path, { method });
      assert.equal(res.status, status, `${method} ${path}`);
      assert.equal((JSON.parse(res.body) as { errors: { code: string }[] }).errors[0].code, code, `${method} ${path}`);
    }
  });
});
