// The OCI 1.1 referrers API against the real registry process on Azurite:
// manifests with a `subject` are acknowledged with OCI-Subject and listed by
// GET /v2/<name>/referrers/<digest>, filtered by artifactType on request.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { AzuriteServer } from '../helpers/azurite.ts';
import { errorCode, RegistryClient, sha256 } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const EMPTY_CONFIG = 'application/vnd.oci.empty.v1+json';

interface ReferrersIndex {
  schemaVersion: number;
  mediaType: string;
  manifests: { mediaType: string; digest: string; size: number; artifactType?: string; annotations?: Record<string, string> }[];
}

describe('referrers', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let client: RegistryClient;
  let subject: { digest: string; size: number };
  let emptyConfig: { mediaType: string; digest: string; size: number };

  before(async () => {
    azurite = await AzuriteServer.start();
    registry = await startRegistry({ connectionString: azurite.connectionString });
    client = new RegistryClient(registry.url);
    emptyConfig = { mediaType: EMPTY_CONFIG, digest: await client.pushBlob('app', '{}'), size: 2 };
    const image = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: emptyConfig, layers: [] });
    assert.equal((await client.putManifest('app', 'v1', image, OCI_MANIFEST)).status, 201);
    subject = { digest: sha256(image), size: Buffer.byteLength(image) };
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
  });

  async function referrers(query = ''): Promise<{ res: Response; index: ReferrersIndex }> {
    const res = await client.request('GET', `/v2/app/referrers/${subject.digest}${query}`);
    assert.equal(res.status, 200);
    return { res, index: (await res.json()) as ReferrersIndex };
  }

  /** Pushes an artifact manifest about the subject; returns its digest. */
  async function pushArtifact(body: Record<string, unknown>, mediaType = OCI_MANIFEST): Promise<string> {
    const text = JSON.stringify({ schemaVersion: 2, mediaType, ...body, subject: { mediaType: OCI_MANIFEST, ...subject } });
    const digest = sha256(text);
    const res = await client.putManifest('app', digest, text, mediaType);
    assert.equal(res.status, 201, await res.text());
    assert.equal(res.headers.get('oci-subject'), subject.digest, 'OCI-Subject acknowledges the subject');
    return digest;
  }

  it('answers an empty index for a subject nobody refers to', async () => {
    const { res, index } = await referrers();
    assert.equal(res.headers.get('content-type'), OCI_INDEX);
    assert.deepEqual(index, { schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
    const unknown = await client.request('GET', `/v2/app/referrers/${sha256('no such subject')}`);
    assert.equal(unknown.status, 200);
    assert.deepEqual(((await unknown.json()) as ReferrersIndex).manifests, []);
  });

  it('lists manifests pushed with a subject, with artifactType and annotations', async () => {
    const signature = await pushArtifact({
      artifactType: 'application/vnd.example.signature',
      config: emptyConfig,
      layers: [],
      annotations: { 'org.example.signer': 'tug' },
    });
    // No artifactType: it is listed with its config's media type.
    const sbom = await pushArtifact({ config: { ...emptyConfig, mediaType: 'application/vnd.example.sbom' }, layers: [] });
    const { index } = await referrers();
    const byDigest = new Map(index.manifests.map((m) => [m.digest, m]));
    assert.equal(index.manifests.length, 2);
    assert.equal(byDigest.get(signature)?.artifactType, 'application/vnd.example.signature');
    assert.deepEqual(byDigest.get(signature)?.annotations, { 'org.example.signer': 'tug' });
    assert.equal(byDigest.get(signature)?.mediaType, OCI_MANIFEST);
    assert.equal(byDigest.get(sbom)?.artifactType, 'application/vnd.example.sbom');
  });

  it('lists an index that names a subject', async () => {
    const child = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: emptyConfig, layers: [] });
    const indexDigest = await pushArtifact({ artifactType: 'application/vnd.example.bundle', manifests: [{ mediaType: OCI_MANIFEST, digest: sha256(child), size: Buffer.byteLength(child) }] }, OCI_INDEX);
    const { index } = await referrers();
    const entry = index.manifests.find((m) => m.digest === indexDigest);
    assert.equal(entry?.mediaType, OCI_INDEX);
    assert.equal(entry?.artifactType, 'application/vnd.example.bundle');
  });

  it('filters by artifactType and says so with OCI-Filters-Applied', async () => {
    const { res, index } = await referrers('?artifactType=application/vnd.example.signature');
    assert.equal(res.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(index.manifests.map((m) => m.artifactType), ['application/vnd.example.signature']);
    const none = await referrers('?artifactType=application/vnd.example.none');
    assert.deepEqual(none.index.manifests, []);
  });

  it('accepts a manifest whose subject is not (yet) in the repository', async () => {
    const text = JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: emptyConfig, layers: [], subject: { mediaType: OCI_MANIFEST, digest: sha256('later'), size: 5 } });
    const res = await client.putManifest('app', 'dangling', text, OCI_MANIFEST);
    assert.equal(res.status, 201);
    const later = await client.request('GET', `/v2/app/referrers/${sha256('later')}`);
    assert.deepEqual(((await later.json()) as ReferrersIndex).manifests.map((m) => m.digest), [sha256(text)]);
  });

  it('drops a deleted referrer from the list', async () => {
    const digest = await pushArtifact({ artifactType: 'application/vnd.example.temporary', config: emptyConfig, layers: [] });
    assert.ok((await referrers()).index.manifests.some((m) => m.digest === digest));
    assert.equal((await client.request('DELETE', `/v2/app/manifests/${digest}`)).status, 202);
    assert.ok(!(await referrers()).index.manifests.some((m) => m.digest === digest));
  });

  it('refuses a malformed subject digest with DIGEST_INVALID', async () => {
    const res = await client.request('GET', '/v2/app/referrers/sha256:short');
    assert.equal(res.status, 400);
    assert.equal(await errorCode(res), 'DIGEST_INVALID');
  });
});
