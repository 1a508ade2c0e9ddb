// Token auth (the Docker registry token specification, as distribution does
// it) end to end: `tug registry --auth token` trusting the real `tug registry
// token-server`, which signs in the htpasswd users and grants, of the scopes
// a client asks for, what the ACL allows. skopeo and podman log in, push and
// pull within their scopes and are refused outside them; forged, expired and
// misaddressed tokens are refused.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint, decodeProtectedHeader, exportJWK, SignJWT } from 'jose';
import { AzuriteServer } from '../helpers/azurite.ts';
import { assertSameImage, layoutTag, OciLayoutWriter } from '../helpers/oci-layout.ts';
import { Podman } from '../helpers/podman.ts';
import { errorCode, RegistryClient } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeo } from '../helpers/skopeo.ts';
import { makeKeyPair, TokenServerProcess } from '../helpers/token-server.ts';
import { TEST_ACL, writeUsers } from '../helpers/registry-users.ts';

describe('token auth with tug registry token-server', () => {
  let azurite: AzuriteServer;
  let tokens: TokenServerProcess;
  let registry: RegistryProcess;
  let client: RegistryClient;
  let work: string;
  let image: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-token-'));
    const acl = join(work, 'acl.yaml');
    await writeFile(acl, TEST_ACL);
    azurite = await AzuriteServer.start();
    tokens = await TokenServerProcess.start({ htpasswd: await writeUsers(work), acl });
    registry = await startRegistry({ connectionString: azurite.connectionString, args: tokens.registryArgs });
    client = new RegistryClient(registry.url);
    image = join(work, 'image');
    const writer = new OciLayoutWriter(image);
    await writer.finish(await writer.writeImage([{ 'token.txt': 'token auth\n' }]), 'v1');
  });

  after(async () => {
    await registry?.close();
    await tokens?.close();
    await azurite?.close();
    await rm(work, { recursive: true, force: true });
  });

  async function token(scopes: string[], creds?: string): Promise<string> {
    const query = new URLSearchParams([['service', tokens.service], ...scopes.map((s): [string, string] => ['scope', s])]);
    const res = await fetch(`${tokens.realm}?${query}`, { headers: creds ? { Authorization: `Basic ${Buffer.from(creds).toString('base64')}` } : {} });
    assert.equal(res.status, 200);
    const body = await res.json() as { token: string; access_token: string; expires_in: number };
    assert.equal(body.access_token, body.token);
    return body.token;
  }

  const bearer = (t: string) => ({ Authorization: `Bearer ${t}` });

  it('answers 401 with a Bearer challenge naming realm, service and the scope the request needs', async () => {
    const expected = (scope?: string) => `Bearer realm="${tokens.realm}",service="${tokens.service}"${scope ? `,scope="${scope}"` : ''}`;
    const base = await client.request('GET', '/v2/');
    assert.equal(base.status, 401);
    assert.equal(base.headers.get('www-authenticate'), expected());
    assert.equal(await errorCode(base), 'UNAUTHORIZED');
    assert.equal((await client.request('GET', '/v2/team-a/app/manifests/v1')).headers.get('www-authenticate'), expected('repository:team-a/app:pull'));
    assert.equal((await client.request('POST', '/v2/team-a/app/blobs/uploads/')).headers.get('www-authenticate'), expected('repository:team-a/app:pull,push'));
    assert.equal((await client.request('GET', '/v2/_catalog')).headers.get('www-authenticate'), expected('registry:catalog:*'));
  });

  it('grants only the requested scopes the ACL allows, and the registry lets in exactly those', async () => {
    const granted = await token(['repository:team-a/app:pull,push', 'repository:public/app:push'], 'alice:alice-pw');
    assert.equal((await client.request('GET', '/v2/', { headers: bearer(granted) })).status, 200);
    const upload = await client.request('POST', '/v2/team-a/app/blobs/uploads/', { headers: bearer(granted) });
    assert.equal(upload.status, 202, 'push on team-a/app was granted');
    const outside = await client.request('POST', '/v2/public/app/blobs/uploads/', { headers: bearer(granted) });
    assert.equal(outside.status, 401, 'push on public/app was not granted: ask for a better token');
    assert.match(outside.headers.get('www-authenticate') ?? '', /scope="repository:public\/app:pull,push",error="insufficient_scope"$/);
    const wrong = await fetch(`${tokens.realm}?service=${tokens.service}`, { headers: { Authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` } });
    assert.equal(wrong.status, 401, 'wrong credentials get 401 from the token server');
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Basic /);
    const elsewhere = await fetch(`${tokens.realm}?service=another-registry`);
    assert.equal(elsewhere.status, 400, 'no tokens for another service');
  });

  it('refuses forged, expired and misaddressed tokens with 401 invalid_token', async () => {
    const stranger = await makeKeyPair(work, 'stranger');
    const sign = async (keyFile: string, claims: { aud?: string; iss?: string; exp?: number }) => new SignJWT({ access: [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }] })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(claims.iss ?? tokens.issuer)
      .setAudience(claims.aud ?? tokens.service)
      .setSubject('alice')
      .setExpirationTime(claims.exp ?? Math.floor(Date.now() / 1000) + 60)
      .sign(createPrivateKey(await readFile(keyFile, 'utf8')));
    const good = await sign(tokens.privateKey, {});
    assert.equal((await client.request('GET', '/v2/team-a/app/tags/list', { headers: bearer(good) })).status, 404, 'a well-made token gets through (to NAME_UNKNOWN)');
    const bad = [
      await sign(stranger.privateKey, {}),
      await sign(tokens.privateKey, { aud: 'another-registry' }),
      await sign(tokens.privateKey, { iss: 'someone-else' }),
      await sign(tokens.privateKey, { exp: Math.floor(Date.now() / 1000) - 600 }),
      'not.a.token',
    ];
    for (const forged of bad) {
      const res = await client.request('GET', '/v2/team-a/app/tags/list', { headers: bearer(forged) });
      assert.equal(res.status, 401);
      assert.match(res.headers.get('www-authenticate') ?? '', /error="invalid_token"/);
    }
  });

  it('names its key in kid by the libtrust id distribution looks up, and still accepts tokens naming it by its JWK thumbprint (the kid it wrote before)', async () => {
    const issued = await token(['repository:team-a/app:pull'], 'alice:alice-pw');
    const { kid } = decodeProtectedHeader(issued);
    const publicKey = createPublicKey(await readFile(tokens.publicKey, 'utf8'));
    // libtrust: SHA-256 of the DER SubjectPublicKeyInfo, 240 bits in base32, twelve groups of four.
    const der = publicKey.export({ type: 'spki', format: 'der' });
    const bits = [...createHash('sha256').update(der).digest().subarray(0, 30)].map((b) => b.toString(2).padStart(8, '0')).join('');
    const expected = bits.match(/.{5}/g)!.map((b) => 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567'[parseInt(b, 2)]).join('').match(/.{4}/g)!.join(':');
    assert.equal(kid, expected);
    const byThumbprint = await new SignJWT({ access: [{ type: 'repository', name: 'team-a/app', actions: ['pull'] }] })
      .setProtectedHeader({ alg: 'ES256', kid: await calculateJwkThumbprint(await exportJWK(publicKey)) })
      .setIssuer(tokens.issuer).setAudience(tokens.service).setSubject('alice')
      .setExpirationTime(Math.floor(Date.now() / 1000) + 60)
      .sign(createPrivateKey(await readFile(tokens.privateKey, 'utf8')));
    for (const t of [issued, byThumbprint]) {
      assert.equal((await client.request('GET', '/v2/team-a/app/tags/list', { headers: bearer(t) })).status, 404, 'let in (to NAME_UNKNOWN)');
    }
  });

  it('lets skopeo push and pull within its scopes and refuses it outside them', async () => {
    const copy = (creds: string | null, from: string, to: string) => skopeo('copy', '--src-tls-verify=false', '--dest-tls-verify=false',
      ...(creds ? ['--src-creds', creds, '--dest-creds', creds] : ['--src-no-creds', '--dest-no-creds']), from, to);
    await copy('alice:alice-pw', `oci:${image}:v1`, `docker://${registry.host}/team-a/skopeo:v1`);
    await copy('bob:bob-pw', `oci:${image}:v1`, `docker://${registry.host}/public/skopeo:v1`);
    await assert.rejects(copy('alice:alice-pw', `oci:${image}:v1`, `docker://${registry.host}/public/alice:v1`), /unauthorized|denied|authentication required/i);
    await assert.rejects(copy('bob:bob-pw', `docker://${registry.host}/team-a/skopeo:v1`, `oci:${join(work, 'bob-pull')}:v1`), /unauthorized|denied|authentication required/i);
    const anonymous = join(work, 'anonymous-pull');
    await copy(null, `docker://${registry.host}/public/skopeo:v1`, `oci:${anonymous}:v1`);
    await assertSameImage(image, anonymous, 'v1');
    await assert.rejects(copy(null, `docker://${registry.host}/team-a/skopeo:v1`, `oci:${join(work, 'anonymous-denied')}:v1`), /unauthorized|denied|authentication required/i);
  });

  it('lets podman log in, push and pull within its scopes and refuses it outside them', async () => {
    const podman = await Podman.create();
    try {
      await assert.rejects(podman.login(registry.host, 'alice', 'wrong'), /unauthorized|invalid username\/password/i);
      await podman.login(registry.host, 'alice', 'alice-pw');
      await podman.load(image, 'v1', 'localhost/podman-test:v1');
      await podman.push('localhost/podman-test:v1', `${registry.host}/team-a/podman:v1`);
      await assert.rejects(podman.push('localhost/podman-test:v1', `${registry.host}/public/podman:v1`), /unauthorized|denied|authentication required/i);
      await podman.logout(registry.host);

      // Anonymous: the public image (pushed by bob) pulls; team-a does not.
      await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'bob:bob-pw', `oci:${image}:v1`, `docker://${registry.host}/public/podman:v1`);
      await podman.pull(`${registry.host}/public/podman:v1`);
      const config = JSON.parse(await readFile(join(image, 'blobs', 'sha256', (await layoutTag(image, 'v1')).digest.slice(7)), 'utf8')) as { config: { digest: string } };
      assert.equal(await podman.imageId(`${registry.host}/public/podman:v1`), config.config.digest.slice(7), 'podman pulled the image that was pushed');
      await assert.rejects(podman.pull(`${registry.host}/team-a/podman:v1`), /unauthorized|denied|authentication required/i);

      await podman.login(registry.host, 'bob', 'bob-pw');
      await assert.rejects(podman.pull(`${registry.host}/team-a/podman:v1`), /unauthorized|denied|authentication required/i);
      await podman.login(registry.host, 'alice', 'alice-pw');
      await podman.pull(`${registry.host}/team-a/podman:v1`);
    } finally {
      await podman.close();
    }
  });
});
