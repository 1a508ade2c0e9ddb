// The manifest half of the protocol against the real registry process on
// Azurite: the four media types by tag and by digest, HEAD, validation,
// deletion by tag and by digest, and the paginated tag list and catalog.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { AzuriteServer } from '../helpers/azurite.ts';
import { errorCode, RegistryClient, sha256 } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';

const DOCKER_MANIFEST = 'application/vnd.docker.distribution.manifest.v2+json';
const DOCKER_LIST = 'application/vnd.docker.distribution.manifest.list.v2+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

describe('manifests, tags and catalog', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let client: RegistryClient;

  before(async () => {
    azurite = await AzuriteServer.start();
    registry = await startRegistry({ connectionString: azurite.connectionString, args: ['--max-manifest-size', '8KiB'] });
    client = new RegistryClient(registry.url);
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
  });

  /** Pushes a config and a layer to `repo` and returns an image manifest of `mediaType` over them. */
  async function imageManifest(repo: string, mediaType: string): Promise<Record<string, unknown>> {
    const docker = mediaType === DOCKER_MANIFEST;
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }));
    const layer = randomBytes(2000);
    return {
      schemaVersion: 2,
      mediaType,
      config: { mediaType: docker ? 'application/vnd.docker.container.image.v1+json' : 'application/vnd.oci.image.config.v1+json', digest: await client.pushBlob(repo, config), size: config.length },
      layers: [{ mediaType: docker ? 'application/vnd.docker.image.rootfs.diff.tar.gzip' : 'application/vnd.oci.image.layer.v1.tar+gzip', digest: await client.pushBlob(repo, layer), size: layer.length }],
    };
  }

  async function pushImage(repo: string, tag: string, mediaType = OCI_MANIFEST): Promise<{ digest: string; body: string }> {
    const body = JSON.stringify(await imageManifest(repo, mediaType));
    const res = await client.putManifest(repo, tag, body, mediaType);
    assert.equal(res.status, 201, await res.text());
    return { digest: sha256(body), body };
  }

  for (const mediaType of [DOCKER_MANIFEST, OCI_MANIFEST]) {
    it(`stores ${mediaType} by tag and serves it by tag and by digest, with HEAD`, async () => {
      const body = JSON.stringify(await imageManifest('media/image', mediaType));
      const digest = sha256(body);
      const put = await client.putManifest('media/image', 'latest', body, mediaType);
      assert.equal(put.status, 201);
      assert.equal(put.headers.get('docker-content-digest'), digest);
      assert.equal(put.headers.get('location'), `/v2/media/image/manifests/${digest}`);
      for (const reference of ['latest', digest]) {
        const get = await client.request('GET', `/v2/media/image/manifests/${reference}`, { headers: { Accept: mediaType } });
        assert.equal(get.status, 200);
        assert.equal(get.headers.get('content-type'), mediaType);
        assert.equal(get.headers.get('docker-content-digest'), digest);
        assert.equal(await get.text(), body, 'served byte-for-byte');
        const head = await client.request('HEAD', `/v2/media/image/manifests/${reference}`);
        assert.equal(head.status, 200);
        assert.equal(head.headers.get('content-length'), String(Buffer.byteLength(body)));
        assert.equal(head.headers.get('docker-content-digest'), digest);
      }
    });
  }

  for (const [listType, childType] of [[DOCKER_LIST, DOCKER_MANIFEST], [OCI_INDEX, OCI_MANIFEST]]) {
    it(`stores ${listType} by digest once its manifests are in the repository`, async () => {
      const amd64 = await pushImage('media/list', `amd64-${listType.length}`, childType);
      const arm64 = await pushImage('media/list', `arm64-${listType.length}`, childType);
      const list = JSON.stringify({
        schemaVersion: 2,
        mediaType: listType,
        manifests: [
          { mediaType: childType, digest: amd64.digest, size: Buffer.byteLength(amd64.body), platform: { architecture: 'amd64', os: 'linux' } },
          { mediaType: childType, digest: arm64.digest, size: Buffer.byteLength(arm64.body), platform: { architecture: 'arm64', os: 'linux' } },
        ],
      });
      const digest = sha256(list);
      const put = await client.putManifest('media/list', digest, list, listType);
      assert.equal(put.status, 201);
      const get = await client.request('GET', `/v2/media/list/manifests/${digest}`);
      assert.equal(get.headers.get('content-type'), listType);
      assert.equal(await get.text(), list);
    });
  }

  it('refuses a manifest whose blobs or child manifests are not in the repository (MANIFEST_BLOB_UNKNOWN)', async () => {
    const manifest = await imageManifest('refs/a', OCI_MANIFEST);
    const elsewhere = await client.putManifest('refs/b', 'v1', manifest, OCI_MANIFEST);
    assert.equal(elsewhere.status, 400);
    assert.equal(await errorCode(elsewhere), 'MANIFEST_BLOB_UNKNOWN');
    const index = { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: sha256('absent'), size: 10 }] };
    const res = await client.putManifest('refs/a', 'idx', index, OCI_INDEX);
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'MANIFEST_BLOB_UNKNOWN');
  });

  it('refuses invalid manifests with MANIFEST_INVALID, a digest mismatch with DIGEST_INVALID and a too-large one with 413', async () => {
    const bad = await client.putManifest('invalid', 'v1', '{not json', OCI_MANIFEST);
    assert.equal(bad.status, 400);
    assert.equal(await errorCode(bad), 'MANIFEST_INVALID');
    const noConfig = await client.putManifest('invalid', 'v1', { schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }, OCI_MANIFEST);
    assert.equal(await errorCode(noConfig), 'MANIFEST_INVALID');
    const mismatch = await client.putManifest('invalid', 'v1', { schemaVersion: 2, mediaType: DOCKER_MANIFEST, config: {}, layers: [] }, OCI_MANIFEST);
    assert.equal(await errorCode(mismatch), 'MANIFEST_INVALID');
    const body = JSON.stringify(await imageManifest('invalid', OCI_MANIFEST));
    const wrongDigest = await client.putManifest('invalid', sha256('other'), body, OCI_MANIFEST);
    assert.equal(wrongDigest.status, 400);
    assert.equal(await errorCode(wrongDigest), 'DIGEST_INVALID');
    const huge = await client.putManifest('invalid', 'v1', { schemaVersion: 2, padding: 'x'.repeat(10_000) }, OCI_MANIFEST);
    assert.equal(huge.status, 413);
    assert.equal(await errorCode(huge), 'MANIFEST_INVALID');
    const badTag = await client.putManifest('invalid', '-tag', body, OCI_MANIFEST);
    assert.equal(badTag.status, 400);
    assert.equal(await errorCode(badTag), 'TAG_INVALID');
  });

  it('answers MANIFEST_UNKNOWN for an unknown tag or digest', async () => {
    await pushImage('unknown', 'v1');
    for (const reference of ['nope', sha256('nope')]) {
      const res = await client.request('GET', `/v2/unknown/manifests/${reference}`);
      assert.equal(res.status, 404);
      assert.equal(await errorCode(res), 'MANIFEST_UNKNOWN');
    }
  });

  it('deletes a tag without deleting its manifest', async () => {
    const { digest } = await pushImage('deltag', 'v1');
    const del = await client.request('DELETE', '/v2/deltag/manifests/v1');
    assert.equal(del.status, 202);
    assert.equal((await client.request('GET', '/v2/deltag/manifests/v1')).status, 404);
    assert.equal((await client.request('GET', `/v2/deltag/manifests/${digest}`)).status, 200);
    const again = await client.request('DELETE', '/v2/deltag/manifests/v1');
    assert.equal(await errorCode(again), 'MANIFEST_UNKNOWN');
  });

  it('deletes a manifest by digest, and with it the tags that point at it', async () => {
    const { digest } = await pushImage('deldigest', 'v1');
    const other = await pushImage('deldigest', 'other');
    const res = await client.request('DELETE', `/v2/deldigest/manifests/${digest}`);
    assert.equal(res.status, 202);
    assert.equal((await client.request('GET', `/v2/deldigest/manifests/${digest}`)).status, 404);
    assert.equal((await client.request('GET', '/v2/deldigest/manifests/v1')).status, 404);
    assert.equal((await client.request('GET', `/v2/deldigest/manifests/${other.digest}`)).status, 200);
    const tags = (await (await client.request('GET', '/v2/deldigest/tags/list')).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['other']);
  });

  it('lists tags in order, paginated with n and last and a Link to the next page', async () => {
    const manifest = await imageManifest('paged', OCI_MANIFEST);
    const tags = ['a', 'b', 'c', 'd', 'e'];
    for (const tag of [...tags].reverse()) assert.equal((await client.putManifest('paged', tag, manifest, OCI_MANIFEST)).status, 201);
    const all = await client.request('GET', '/v2/paged/tags/list');
    assert.deepEqual(await all.json(), { name: 'paged', tags });
    const first = await client.request('GET', '/v2/paged/tags/list?n=2');
    assert.deepEqual(((await first.json()) as { tags: string[] }).tags, ['a', 'b']);
    assert.equal(first.headers.get('link'), '</v2/paged/tags/list?n=2&last=b>; rel="next"');
    const next = await client.request('GET', '/v2/paged/tags/list?n=2&last=b');
    assert.deepEqual(((await next.json()) as { tags: string[] }).tags, ['c', 'd']);
    const last = await client.request('GET', '/v2/paged/tags/list?n=2&last=d');
    assert.deepEqual(((await last.json()) as { tags: string[] }).tags, ['e']);
    assert.equal(last.headers.get('link'), null);
    const none = await client.request('GET', '/v2/paged/tags/list?n=0');
    assert.deepEqual(((await none.json()) as { tags: string[] }).tags, []);
    const invalid = await client.request('GET', '/v2/paged/tags/list?n=-1');
    assert.equal(invalid.status, 400);
    assert.equal(await errorCode(invalid), 'PAGINATION_NUMBER_INVALID');
    const unknown = await client.request('GET', '/v2/never/pushed/tags/list');
    assert.equal(unknown.status, 404);
    assert.equal(await errorCode(unknown), 'NAME_UNKNOWN');
  });

  it('lists repositories in the catalog, nested names included, paginated with n and last', async () => {
    const res = await client.request('GET', '/v2/_catalog');
    const { repositories } = (await res.json()) as { repositories: string[] };
    for (const name of ['deldigest', 'deltag', 'media/image', 'media/list', 'paged']) assert.ok(repositories.includes(name), name);
    assert.deepEqual(repositories, [...repositories].sort());
    assert.ok(!repositories.includes('refs/b'), 'a repository with nothing in it is not listed');
    const first = await client.request('GET', '/v2/_catalog?n=2');
    const page = ((await first.json()) as { repositories: string[] }).repositories;
    assert.deepEqual(page, repositories.slice(0, 2));
    assert.equal(first.headers.get('link'), `</v2/_catalog?n=2&last=${encodeURIComponent(page[1])}>; rel="next"`);
    const second = await client.request('GET', `/v2/_catalog?n=2&last=${encodeURIComponent(page[1])}`);
    assert.deepEqual(((await second.json()) as { repositories: string[] }).repositories, repositories.slice(2, 4));
  });
});
