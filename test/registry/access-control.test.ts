// Per-repository access control (`--acl`) with basic auth: who may pull, push
// and delete where, anonymous pull per pattern, a catalog that shows each
// client only what it may pull, cross-repository mounts that need pull on the
// source, and an ACL file that is checked at start-up (exit 2, naming the problem).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AzuriteServer } from '../helpers/azurite.ts';
import { layoutBlobs, OciLayoutWriter } from '../helpers/oci-layout.ts';
import { errorCode, RegistryClient, sha256 } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeo } from '../helpers/skopeo.ts';
import { TUG } from '../helpers/tug-process.ts';
import { TEST_ACL, writeUsers } from '../helpers/registry-users.ts';

const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });
const ALICE = basic('alice', 'alice-pw');
const BOB = basic('bob', 'bob-pw');

describe('access control (--acl) with basic auth', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let client: RegistryClient;
  let work: string;
  let image: string;
  let layers: string[];

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-acl-'));
    const acl = join(work, 'acl.yaml');
    await writeFile(acl, TEST_ACL);
    azurite = await AzuriteServer.start();
    registry = await startRegistry({ connectionString: azurite.connectionString, args: ['--htpasswd', await writeUsers(work), '--acl', acl] });
    client = new RegistryClient(registry.url);
    image = join(work, 'image');
    const writer = new OciLayoutWriter(image);
    const top = await writer.writeImage([{ 'app.txt': 'acl\n' }]);
    await writer.finish(top, 'v1');
    layers = (await layoutBlobs(image)).filter((d) => d !== top.digest);
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
    await rm(work, { recursive: true, force: true });
  });

  const push = (creds: string, repository: string) =>
    skopeo('copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${image}:v1`, `docker://${registry.host}/${repository}:v1`);

  it('lets each user push where a rule allows it, and refuses elsewhere with 403 DENIED', async () => {
    await push('alice:alice-pw', 'team-a/app');
    await push('bob:bob-pw', 'public/app');
    await assert.rejects(push('alice:alice-pw', 'public/app2'), /denied|403|forbidden/i);
    await assert.rejects(push('bob:bob-pw', 'team-a/app2'), /denied|403|forbidden/i);
    const res = await client.request('POST', '/v2/team-a/app/blobs/uploads/', { headers: BOB });
    assert.equal(res.status, 403);
    assert.equal(await errorCode(res), 'DENIED');
  });

  it('lets anyone pull what an anonymous rule covers, and asks anonymous clients to sign in elsewhere', async () => {
    const open = await client.request('GET', '/v2/public/app/manifests/v1', { headers: { Accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(open.status, 200, 'anonymous pull of public/**');
    await skopeo('inspect', '--tls-verify=false', '--no-creds', `docker://${registry.host}/public/app:v1`);
    const closed = await client.request('GET', '/v2/team-a/app/manifests/v1');
    assert.equal(closed.status, 401);
    assert.equal(closed.headers.get('www-authenticate'), 'Basic realm="tug-registry"');
    assert.equal(await errorCode(closed), 'UNAUTHORIZED');
    const signedIn = await client.request('GET', '/v2/team-a/app/manifests/v1', { headers: BOB });
    assert.equal(signedIn.status, 403, 'a signed-in user without the right is denied, not asked to sign in');
    assert.equal((await client.request('GET', '/v2/team-a/app/manifests/v1', { headers: ALICE })).status, 200);
  });

  it('allows delete only where a rule grants it', async () => {
    const denied = await client.request('DELETE', '/v2/team-a/app/manifests/v1', { headers: ALICE });
    assert.equal(denied.status, 403);
    assert.equal(await errorCode(denied), 'DENIED');
    await push('bob:bob-pw', 'public/gone');
    assert.equal((await client.request('DELETE', '/v2/public/gone/manifests/v1', { headers: BOB })).status, 202);
  });

  it('lists in the catalog only the repositories each client may pull', async () => {
    const catalog = async (headers: Record<string, string>) => ((await (await client.request('GET', '/v2/_catalog', { headers })).json()) as { repositories: string[] }).repositories;
    assert.deepEqual(await catalog(ALICE), ['public/app', 'public/gone', 'team-a/app']);
    assert.deepEqual(await catalog(BOB), ['public/app', 'public/gone']);
    assert.deepEqual(await catalog({}), ['public/app', 'public/gone']);
  });

  it('mounts a blob across repositories only from where the user may pull', async () => {
    const layer = layers[0];
    const fromPublic = await client.request('POST', `/v2/team-a/mounted/blobs/uploads/?mount=${layer}&from=public/app`, { headers: ALICE });
    assert.equal(fromPublic.status, 201, 'alice may pull public/app');
    const fromTeam = await client.request('POST', `/v2/public/mounted/blobs/uploads/?mount=${layer}&from=team-a/app`, { headers: BOB });
    assert.equal(fromTeam.status, 202, 'bob may not pull team-a/app: a fresh upload instead');
    // Pushed to team-a only, then mounted without `from`: only who may pull team-a gets it.
    const digest = sha256('only in team-a');
    const posted = await client.request('POST', `/v2/team-a/app/blobs/uploads/?digest=${digest}`, { headers: ALICE, body: 'only in team-a' });
    assert.equal(posted.status, 201);
    assert.equal((await client.request('POST', `/v2/public/bob-mount/blobs/uploads/?mount=${digest}`, { headers: BOB })).status, 202);
    assert.equal((await client.request('POST', `/v2/team-a/alice-mount/blobs/uploads/?mount=${digest}`, { headers: ALICE })).status, 201);
  });

  it('refuses to start with an ACL file that is not valid, naming the problem (exit 2)', async () => {
    const cases: [string, RegExp][] = [
      ['rules:\n  - repositories: ["a/*"]\n    users: [alice]\n    actions: [pull, fly]\n', /rules\[0\]\.actions: "fly" is not one of pull, push, delete/],
      ['rules:\n  - repositories: ["a/*"]\n    anonymous: true\n    actions: [push]\n', /rules\[0\]: anonymous clients may only pull/],
      ['rules:\n  - repositories: ["a/*"]\n    groups: [nobody]\n    actions: [pull]\n', /rules\[0\]\.groups: no group "nobody"/],
      ['rules: [\n', /is not YAML or JSON/],
      ['{"rules": [{"repositories": ["A/*"], "users": ["x"], "actions": ["pull"]}]}', /"A\/\*" is not a repository glob/],
    ];
    for (const [index, [content, message]] of cases.entries()) {
      const path = join(work, `bad-${index}.yaml`);
      await writeFile(path, content);
      const result = await promisify(execFile)(process.execPath, [TUG, 'registry', '--container', 'registry', '--azure-connection-string', azurite.connectionString, '--htpasswd', join(work, 'htpasswd'), '--acl', path], { timeout: 20_000 }).then(
        () => ({ code: 0, stderr: '' }),
        (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
      );
      assert.equal(result.code, 2, content);
      assert.match(result.stderr, message);
    }
  });
});
