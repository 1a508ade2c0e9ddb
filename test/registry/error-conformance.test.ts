// Every error path of the API against the OCI distribution spec's table of
// codes and statuses, differentially: each request goes to Tug and to the
// Docker registry itself (Debian's distribution 2.8), and Tug must answer the
// spec's status and code; where distribution answers the same status the test
// says so and checks it, and where it does not, the row says why (a 2.8 bug,
// or a feature it lacks), so a deliberate difference is never an accident.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzuriteServer } from '../helpers/azurite.ts';
import { distributionUnavailable, DistributionRegistry } from '../helpers/distribution.ts';
import { RegistryClient, sha256 } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ABSENT = sha256('absent');
const UPLOAD = '00000000-0000-4000-8000-000000000000';

interface ErrorCase {
  readonly method: string;
  readonly path: string;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly status: number;
  /** The spec's code, or null when the answer is not an error (a 202 fresh upload). */
  readonly code: string | null;
  /** Why distribution 2.8 answers another status; absent when it answers the same. */
  readonly distributionDiffers?: string;
}

const manifestOf = (digest: string) => JSON.stringify({
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: 2 },
  layers: [],
});

const CASES: readonly ErrorCase[] = [
  // A reference that is neither a tag nor a digest names nothing: unknown, not invalid.
  { method: 'GET', path: '/v2/ok/manifests/bad~tag', status: 404, code: 'MANIFEST_UNKNOWN' },
  { method: 'HEAD', path: '/v2/ok/manifests/bad~tag', status: 404, code: 'MANIFEST_UNKNOWN' },
  { method: 'GET', path: '/v2/ok/manifests/-dash', status: 404, code: 'MANIFEST_UNKNOWN' },
  { method: 'GET', path: '/v2/ok/manifests/sha256:1234', status: 404, code: 'MANIFEST_UNKNOWN', distributionDiffers: '2.8 answers 500 UNKNOWN (a bug)' },
  { method: 'HEAD', path: '/v2/ok/manifests/md5:d41d8cd98f00b204e9800998ecf8427e', status: 404, code: 'MANIFEST_UNKNOWN', distributionDiffers: '2.8 answers 500 (a bug)' },
  { method: 'DELETE', path: '/v2/ok/manifests/bad~tag', status: 404, code: 'MANIFEST_UNKNOWN' },
  { method: 'GET', path: `/v2/ok/manifests/${ABSENT}`, status: 404, code: 'MANIFEST_UNKNOWN' },
  { method: 'GET', path: '/v2/ok/manifests/latest', status: 404, code: 'MANIFEST_UNKNOWN' },
  { method: 'DELETE', path: `/v2/ok/manifests/${ABSENT}`, status: 404, code: 'MANIFEST_UNKNOWN' },
  { method: 'DELETE', path: '/v2/ok/manifests/latest', status: 404, code: 'MANIFEST_UNKNOWN', distributionDiffers: '2.8 cannot delete by tag (400 DIGEST_INVALID); OCI 1.1 can' },
  // A PUT would create what it names, so an invalid tag there is the client's error.
  { method: 'PUT', path: '/v2/ok/manifests/bad~tag', headers: { 'Content-Type': OCI_MANIFEST }, body: '{}', status: 400, code: 'TAG_INVALID', distributionDiffers: '2.8\'s router does not match the path (404 page not found)' },
  { method: 'PUT', path: '/v2/ok/manifests/v1', headers: { 'Content-Type': OCI_MANIFEST }, body: 'not json', status: 400, code: 'MANIFEST_INVALID' },
  { method: 'PUT', path: '/v2/ok/manifests/v1', headers: { 'Content-Type': OCI_MANIFEST }, body: manifestOf(ABSENT), status: 400, code: 'MANIFEST_BLOB_UNKNOWN' },
  { method: 'GET', path: `/v2/ok/blobs/${ABSENT}`, status: 404, code: 'BLOB_UNKNOWN' },
  { method: 'HEAD', path: `/v2/ok/blobs/${ABSENT}`, status: 404, code: 'BLOB_UNKNOWN' },
  { method: 'DELETE', path: `/v2/ok/blobs/${ABSENT}`, status: 404, code: 'BLOB_UNKNOWN' },
  { method: 'GET', path: '/v2/ok/blobs/sha256:12', status: 400, code: 'DIGEST_INVALID' },
  { method: 'GET', path: '/v2/Upper/manifests/latest', status: 400, code: 'NAME_INVALID', distributionDiffers: '2.8\'s router does not match the path (404 page not found)' },
  { method: 'GET', path: '/v2/ok/tags/list', status: 404, code: 'NAME_UNKNOWN' },
  { method: 'GET', path: '/v2/_catalog?n=abc', status: 400, code: 'PAGINATION_NUMBER_INVALID', distributionDiffers: '2.8 ignores a malformed n' },
  { method: 'GET', path: `/v2/ok/blobs/uploads/${UPLOAD}`, status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { method: 'PATCH', path: `/v2/ok/blobs/uploads/${UPLOAD}`, body: 'x', status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { method: 'PUT', path: `/v2/ok/blobs/uploads/${UPLOAD}?digest=${ABSENT}`, status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { method: 'DELETE', path: `/v2/ok/blobs/uploads/${UPLOAD}`, status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { method: 'POST', path: '/v2/ok/blobs/uploads/?digest=sha256:zz', body: 'x', status: 400, code: 'DIGEST_INVALID', distributionDiffers: '2.8 has no single-POST upload and starts a session (202)' },
  // A mount the registry cannot do is a fresh upload session, malformed or not.
  { method: 'POST', path: `/v2/ok/blobs/uploads/?mount=${ABSENT}&from=other`, status: 202, code: null },
  { method: 'POST', path: '/v2/ok/blobs/uploads/?mount=bad&from=other', status: 202, code: null },
  { method: 'POST', path: `/v2/ok/blobs/uploads/?mount=${ABSENT}&from=Bad`, status: 202, code: null },
  { method: 'POST', path: '/v2/ok/manifests/latest', status: 405, code: 'UNSUPPORTED' },
];

const unavailable = distributionUnavailable();

describe('error codes and statuses (OCI distribution spec), against distribution', { skip: unavailable ?? false }, () => {
  let azurite: AzuriteServer;
  let tug: RegistryProcess;
  let distribution: DistributionRegistry;
  let work: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-errors-'));
    azurite = await AzuriteServer.start();
    [tug, distribution] = await Promise.all([
      startRegistry({ connectionString: azurite.connectionString }),
      DistributionRegistry.start(join(work, 'distribution')),
    ]);
  });

  after(async () => {
    await tug?.close();
    await distribution?.close();
    await azurite?.close();
    await rm(work, { recursive: true, force: true });
  });

  it('answers every error path with the spec\'s status and code, and the status distribution answers unless the row says why not', async () => {
    for (const c of CASES) {
      const what = `${c.method} ${c.path}`;
      const ours = await new RegistryClient(tug.url).request(c.method, c.path, { headers: c.headers, body: c.body });
      const theirs = await new RegistryClient(distribution.url).request(c.method, c.path, { headers: c.headers, body: c.body });
      await theirs.arrayBuffer();
      assert.equal(ours.status, c.status, what);
      if (c.code !== null) {
        assert.equal(ours.headers.get('content-type'), 'application/json', what);
        if (c.method !== 'HEAD') {
          const body = await ours.json() as { errors: { code: string; message: string }[] };
          assert.equal(body.errors[0].code, c.code, what);
          assert.equal(typeof body.errors[0].message, 'string', what);
        }
      }
      await ours.arrayBuffer().catch(() => {});
      if (c.distributionDiffers) assert.notEqual(theirs.status, c.status, `${what}: distribution now agrees; drop the note "${c.distributionDiffers}"`);
      else assert.equal(theirs.status, c.status, `${what}: distribution answers the same status`);
    }
  });
});
