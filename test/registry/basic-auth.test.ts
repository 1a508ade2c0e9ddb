// Basic authentication with an htpasswd file of bcrypt hashes, and the rule
// that makes it mandatory: the registry refuses to listen beyond loopback
// without it. An unknown user costs what a known one does (timing tells
// nobody which users exist), and concurrent bcrypt checks are bounded.
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

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}


describe('basic auth', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let work: string;
  let htpasswd: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'tug-auth-'));
    htpasswd = join(work, 'htpasswd');
    // Cost 5, as `htpasswd -B` writes by default.
    await writeFile(htpasswd, `# users of the test registry\nci:${bcrypt.hashSync('s3cret', 5)}\n`);
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

  it('takes as long to refuse an unknown user as a known user with a wrong password (no user-enumeration oracle)', async () => {
    const client = new RegistryClient(registry.url);
    const timed = async (headers: Record<string, string>) => {
      const started = performance.now();
      const res = await client.request('GET', '/v2/', { headers });
      await res.arrayBuffer();
      assert.equal(res.status, 401);
      return performance.now() - started;
    };
    const known: number[] = [];
    const unknown: number[] = [];
    // Interleaved, so load from elsewhere on the machine falls on both alike.
    for (let i = 0; i < 9; i++) {
      known.push(await timed(basic('ci', `wrong-${i}`)));
      unknown.push(await timed(basic(`nobody-${i}`, `wrong-${i}`)));
    }
    const ratio = median(unknown) / median(known);
    // Before, the unknown user's dummy hash had cost 10 against the file's 5: about 12× slower.
    assert.ok(ratio > 1 / 3 && ratio < 3, `unknown ${median(unknown).toFixed(1)} ms vs known ${median(known).toFixed(1)} ms (ratio ${ratio.toFixed(2)})`);
  });

  it('runs at most --auth-concurrency bcrypt checks with --auth-queue waiting, and refuses the rest with 429 TOOMANYREQUESTS', async () => {
    const slow = join(work, 'htpasswd-slow');
    // Cost 11 (~0.3 s a check, bcryptjs yielding every 0.1 s): the requests arrive while the first checks run.
    await writeFile(slow, `ci:${bcrypt.hashSync('s3cret', 11)}\n`);
    const bounded = await startRegistry({ connectionString: azurite.connectionString, args: ['--htpasswd', slow, '--auth-concurrency', '1', '--auth-queue', '2'] });
    try {
      const client = new RegistryClient(bounded.url);
      const answers = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
        const res = await client.request('GET', '/v2/', { headers: basic('ci', `wrong-${i}`) });
        return { status: res.status, retryAfter: res.headers.get('retry-after'), code: await errorCode(res) };
      }));
      const refused = answers.filter((a) => a.status === 429);
      const checked = answers.filter((a) => a.status === 401);
      // bcryptjs blocks the event loop 0.1 s at a time, so the ten are read over a
      // second or so and a slot freed meanwhile takes a late one: not exactly 3 checked.
      assert.ok(checked.length >= 1 && refused.length >= 2, `checked ${checked.length}, refused ${refused.length} of 10`);
      assert.equal(refused.length + checked.length, 10);
      for (const answer of refused) {
        assert.equal(answer.code, 'TOOMANYREQUESTS');
        assert.equal(answer.retryAfter, '1');
      }
      const ok = await client.request('GET', '/v2/', { headers: basic('ci', 's3cret') });
      assert.equal(ok.status, 200, 'the queue drains and right credentials get in');
    } finally {
      await bounded.close();
    }
  });
});
