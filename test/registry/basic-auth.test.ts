// Basic authentication with an htpasswd file of bcrypt hashes, and the rule
// that makes it mandatory: the registry refuses to listen beyond loopback
// without it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { AzuriteServer } from '../helpers/azurite.ts';
import { OciLayoutWriter } from '../helpers/oci-layout.ts';
import { errorCode, RegistryClient } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { skopeo } from '../helpers/skopeo.ts';
import { TUG } from '../helpers/tug-process.ts';


describe('basic auth', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let work: string;
  let htpasswd: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-auth-'));
    htpasswd = join(work, 'htpasswd');
    await writeFile(htpasswd, `# users of the test registry\nci:${bcrypt.hashSync('s3cret', 4)}\n`);
    azurite = await AzuriteServer.start();
    registry = await startRegistry({ connectionString: azurite.connectionString, args: ['--htpasswd', htpasswd] });
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
    await rm(work, { recursive: true, force: true });
  });

  const basic = (user: string, password: string) => ({ Authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}` });

  it('answers 401 UNAUTHORIZED with a Basic challenge without valid credentials', async () => {
    const client = new RegistryClient(registry.url);
    for (const headers of [{}, basic('ci', 'wrong'), basic('nobody', 's3cret'), { Authorization: 'Bearer x' }]) {
      const res = await client.request('GET', '/v2/', { headers });
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Basic realm="tug-registry"');
      assert.equal(await errorCode(res), 'UNAUTHORIZED');
    }
    const ok = await client.request('GET', '/v2/', { headers: basic('ci', 's3cret') });
    assert.equal(ok.status, 200);
  });

  it('lets skopeo push and inspect with the right credentials, and refuses it without', async () => {
    const source = join(work, 'image');
    const image = new OciLayoutWriter(source);
    const top = await image.writeImage([{ 'a.txt': 'authenticated\n' }]);
    await image.finish(top, 'v1');
    await assert.rejects(skopeo('copy', '--dest-tls-verify=false', `oci:${source}:v1`, `docker://${registry.host}/private/app:v1`), /401|unauthorized|authentication required/i);
    await skopeo('copy', '--dest-tls-verify=false', '--dest-creds', 'ci:s3cret', `oci:${source}:v1`, `docker://${registry.host}/private/app:v1`);
    const inspected = JSON.parse(await skopeo('inspect', '--tls-verify=false', '--creds', 'ci:s3cret', '--raw', `docker://${registry.host}/private/app:v1`)) as { layers: unknown[] };
    assert.equal(inspected.layers.length, 1);
  });

  it('refuses to listen beyond loopback without --htpasswd', async () => {
    const result = await promisify(execFile)(process.execPath, [TUG, 'registry', '--listen', '0.0.0.0:0', '--container', 'registry', '--azure-connection-string', azurite.connectionString]).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    assert.equal(result.code, 2);
    assert.match(result.stderr, /--htpasswd/);
  });
});
