// `--blob-redirect`: a blob GET the node cache cannot answer is a 307 to a
// read-only SAS URL of that blob in Azurite, after the same checks a relayed
// read makes. skopeo follows it and gets the exact bytes; the URL reads that
// one blob and nothing else; a cached blob, a client without pull, a HEAD, a
// registry without the flag and a mirror's blob not stored yet are answered
// as before.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzuriteServer } from '../helpers/azurite.ts';
import { DistributionRegistry, distributionUnavailable } from '../helpers/distribution.ts';
import { assertSameImage, OciLayoutWriter, readLayoutBlob } from '../helpers/oci-layout.ts';
import { errorCode, RegistryClient, sha256 } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { TEST_ACL, writeUsers } from '../helpers/registry-users.ts';
import { skopeo, skopeoCopy } from '../helpers/skopeo.ts';
import { waitFor } from '../helpers/wait.ts';

const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const ALICE = basic('alice', 'alice-pw');
const BOB = basic('bob', 'bob-pw');
/** Azurite's development account key (the helper's connection string carries it). */
const ACCOUNT_KEY = /AccountKey=([^;]+)/;

describe('blob redirects (--blob-redirect)', () => {
  let work: string;
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let client: RegistryClient;
  const others: RegistryProcess[] = [];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-blob-redirect-'));
    const acl = join(work, 'acl.yaml');
    await writeFile(acl, TEST_ACL);
    azurite = await AzuriteServer.start();
    registry = await startRegistry({
      connectionString: azurite.connectionString,
      args: ['--htpasswd', await writeUsers(work), '--acl', acl, '--cache-dir', join(work, 'cache'), '--blob-redirect'],
    });
    client = new RegistryClient(registry.url);
  });

  after(async () => {
    await registry?.close();
    await Promise.all(others.map((r) => r.close()));
    await azurite?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  const redirectsLogged = () => registry.logs().filter((l) => l.msg === 'request' && l.status === 307 && String(l.path).includes('/blobs/sha256:')).length;

  it('lets skopeo pull an image through redirects, byte-identically', async () => {
    const source = join(work, 'source');
    const writer = new OciLayoutWriter(source);
    const top = await writer.writeImage([{ 'app.bin': randomBytes(2 * 1024 * 1024) }, { 'etc/config': 'x=1\n' }]);
    await writer.finish(top, 'v1');
    await skopeo('copy', '--all', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', 'alice:alice-pw', `oci:${source}:v1`, `docker://${registry.host}/team-a/app:v1`);
    const before = redirectsLogged();
    const pulled = join(work, 'pulled');
    await skopeo('copy', '--all', '--preserve-digests', '--src-tls-verify=false', '--src-creds', 'alice:alice-pw', `docker://${registry.host}/team-a/app:v1`, `oci:${pulled}:v1`);
    await assertSameImage(source, pulled, 'v1');
    // Two layers and the config: each blob GET was a redirect.
    assert.ok(redirectsLogged() - before >= 3, `blob GETs were redirected (${redirectsLogged() - before})`);
  });

  it('redirects a GET to a read-only URL of exactly that blob, never carrying the account key', async () => {
    const content = randomBytes(300_000);
    const other = randomBytes(1000);
    const digest = await pushBlob('team-a/raw', content);
    const otherDigest = await pushBlob('team-a/raw', other);
    const res = await client.request('GET', `/v2/team-a/raw/blobs/${digest}`, { headers: ALICE });
    assert.equal(res.status, 307);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const location = new URL(res.headers.get('location')!);
    assert.equal(location.host, `${azurite.host}:${azurite.port}`, 'the Location is Azurite, not the registry');
    assert.equal(location.searchParams.get('sp'), 'r', 'read permission only');
    assert.equal(location.searchParams.get('sr'), 'b', 'a single blob');
    const lifetime = Date.parse(location.searchParams.get('se')!) - Date.now();
    assert.ok(lifetime > 60_000 && lifetime <= 20 * 60_000, `a short lifetime (${lifetime} ms)`);
    const key = ACCOUNT_KEY.exec(azurite.connectionString)![1];
    assert.ok(!location.href.includes(key) && !location.href.includes(encodeURIComponent(key)), 'the account key is not in the URL');

    const read = await fetch(location);
    assert.equal(read.status, 200);
    assert.ok(Buffer.from(await read.arrayBuffer()).equals(content), 'the URL serves the exact bytes');

    const overwrite = await fetch(location, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: randomBytes(10) });
    await overwrite.arrayBuffer();
    assert.equal(overwrite.status, 403, 'a write with the SAS is refused');
    const again = await fetch(location);
    assert.ok(Buffer.from(await again.arrayBuffer()).equals(content), 'the blob is unchanged');

    // The same signature on the other blob's name (…/blobs/sha256/<2 hex>/<hex>/data).
    const hexPath = (d: string) => `${d.slice(7, 9)}/${d.slice(7)}/`;
    const otherLocation = new URL(location.href.replace(hexPath(digest), hexPath(otherDigest)));
    assert.notEqual(otherLocation.pathname, location.pathname);
    const elsewhere = await fetch(otherLocation);
    await elsewhere.arrayBuffer();
    assert.equal(elsewhere.status, 403, 'the SAS does not read another blob');
    // The same blob answers 200 to a plain read with its own SAS: the 403 above is the signature, not a missing blob.
    const otherRedirect = await client.request('GET', `/v2/team-a/raw/blobs/${otherDigest}`, { headers: ALICE });
    assert.equal(new URL(otherRedirect.headers.get('location')!).pathname, otherLocation.pathname);
    const otherRead = await fetch(otherRedirect.headers.get('location')!);
    assert.ok(Buffer.from(await otherRead.arrayBuffer()).equals(other));
  });

  it('redirects a Range request too, and the Location serves that range', async () => {
    const content = randomBytes(100_000);
    const digest = await pushBlob('team-a/ranged', content);
    const res = await client.request('GET', `/v2/team-a/ranged/blobs/${digest}`, { headers: { ...ALICE, Range: 'bytes=1000-1999' } });
    assert.equal(res.status, 307);
    const read = await fetch(res.headers.get('location')!, { headers: { Range: 'bytes=1000-1999' } });
    assert.equal(read.status, 206);
    assert.ok(Buffer.from(await read.arrayBuffer()).equals(content.subarray(1000, 2000)));
  });

  it('answers a HEAD itself, without a redirect', async () => {
    const content = randomBytes(5000);
    const digest = await pushBlob('team-a/head', content);
    const res = await client.request('HEAD', `/v2/team-a/head/blobs/${digest}`, { headers: ALICE });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('location'), null);
    assert.equal(res.headers.get('content-length'), String(content.length));
  });

  it('gives a client without pull permission no redirect: 401 anonymous, 403 DENIED for another user', async () => {
    const digest = await pushBlob('team-a/secret', randomBytes(2000));
    const anonymous = await client.request('GET', `/v2/team-a/secret/blobs/${digest}`);
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.headers.get('location'), null);
    assert.equal(await errorCode(anonymous), 'UNAUTHORIZED');
    const bob = await client.request('GET', `/v2/team-a/secret/blobs/${digest}`, { headers: BOB });
    assert.equal(bob.status, 403);
    assert.equal(bob.headers.get('location'), null);
    assert.equal(await errorCode(bob), 'DENIED');
  });

  it('redirects only to blobs linked into the repository: another repository\'s blob is BLOB_UNKNOWN', async () => {
    const digest = await pushBlob('team-a/one', randomBytes(2000));
    const res = await client.request('GET', `/v2/team-a/two/blobs/${digest}`, { headers: ALICE });
    assert.equal(res.status, 404);
    assert.equal(res.headers.get('location'), null);
    assert.equal(await errorCode(res), 'BLOB_UNKNOWN');
  });

  it('serves a blob the node cache holds from the cache (200, no redirect), and relays everything without the flag', async () => {
    const cacheDir = join(work, 'shared-cache');
    const args = ['--cache-dir', cacheDir];
    const plain = await startRegistry({ connectionString: azurite.connectionString, container: 'cached', args });
    others.push(plain);
    const plainClient = new RegistryClient(plain.url);
    const cached = randomBytes(200_000);
    const uncached = randomBytes(200_000);
    const cachedDigest = await plainClient.pushBlob('cached/app', cached);
    const uncachedDigest = await plainClient.pushBlob('cached/app', uncached);
    const relayed = await plainClient.request('GET', `/v2/cached/app/blobs/${cachedDigest}`);
    assert.equal(relayed.status, 200, 'without --blob-redirect the registry serves the bytes');
    assert.ok(Buffer.from(await relayed.arrayBuffer()).equals(cached));
    await waitFor(() => plain.logs().some((l) => l.msg === 'cache fill' && l.digest === cachedDigest), { timeout: 10_000, what: 'the cache fill' });
    await plain.close();

    const redirecting = await startRegistry({ connectionString: azurite.connectionString, container: 'cached', args: [...args, '--blob-redirect'] });
    others.push(redirecting);
    const redirectingClient = new RegistryClient(redirecting.url);
    const hit = await redirectingClient.request('GET', `/v2/cached/app/blobs/${cachedDigest}`);
    assert.equal(hit.status, 200, 'a cached blob is served from the node');
    assert.ok(Buffer.from(await hit.arrayBuffer()).equals(cached));
    const miss = await redirectingClient.request('GET', `/v2/cached/app/blobs/${uncachedDigest}`);
    await miss.arrayBuffer();
    assert.equal(miss.status, 307, 'a blob not cached is redirected');
  });

  it('in mirror mode, fetches a blob not stored yet from upstream (200), and redirects it once stored', { skip: distributionUnavailable() ?? false }, async () => {
    const upstream = await DistributionRegistry.start(join(work, 'upstream'));
    try {
      const source = join(work, 'mirrored');
      const writer = new OciLayoutWriter(source);
      const top = await writer.writeImage([{ 'app.bin': randomBytes(300_000) }]);
      await writer.finish(top, 'v1');
      await skopeoCopy(`oci:${source}:v1`, `docker://${upstream.host}/lib/app:v1`);
      const manifest = JSON.parse((await readLayoutBlob(source, top.digest)).toString()) as { layers: { digest: string }[] };
      const layer = manifest.layers[0].digest;
      const mirror = await startRegistry({ connectionString: azurite.connectionString, container: 'mirror', args: ['--proxy-remote', upstream.url, '--blob-redirect'] });
      others.push(mirror);
      const mirrorClient = new RegistryClient(mirror.url);
      const first = await mirrorClient.request('GET', `/v2/lib/app/blobs/${layer}`);
      assert.equal(first.status, 200, 'a blob not stored is fetched through the registry');
      const body = Buffer.from(await first.arrayBuffer());
      assert.equal(sha256(body), layer);
      await waitFor(() => mirror.logs().some((l) => l.msg === 'stored blob from upstream' && l.digest === layer), { timeout: 10_000, what: 'the blob to be stored' });
      const second = await mirrorClient.request('GET', `/v2/lib/app/blobs/${layer}`);
      assert.equal(second.status, 307, 'a stored blob is redirected');
      const read = await fetch(second.headers.get('location')!);
      assert.ok(Buffer.from(await read.arrayBuffer()).equals(body));
    } finally {
      await upstream.close();
    }
  });

  async function pushBlob(repository: string, content: Buffer): Promise<string> {
    const digest = sha256(content);
    const res = await client.request('POST', `/v2/${repository}/blobs/uploads/?digest=${digest}`, { headers: { ...ALICE, 'Content-Type': 'application/octet-stream' }, body: content });
    await res.arrayBuffer();
    assert.equal(res.status, 201);
    return digest;
  }
});
