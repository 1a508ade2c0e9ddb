// `tug registry` validates its whole configuration before doing anything: a
// missing or invalid setting stops it with one line naming the flag (and its
// environment variable) and exit code 2.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { TUG } from '../helpers/tug-process.ts';

const CONNECTION = 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;';

function tug(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stderr: string }> {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ...env };
  if (!('AZURE_STORAGE_CONNECTION_STRING' in env)) delete childEnv.AZURE_STORAGE_CONNECTION_STRING;
  return new Promise((resolve) => {
    execFile(process.execPath, [TUG, ...args], { env: childEnv, timeout: 10_000 }, (err, _stdout, stderr) => {
      resolve({ code: err ? (err as { code: number }).code : 0, stderr });
    });
  });
}

describe('tug registry command line', () => {
  it('requires the connection string, naming the flag and AZURE_STORAGE_CONNECTION_STRING', async () => {
    const { code, stderr } = await tug(['registry', '--container', 'registry']);
    assert.equal(code, 2);
    assert.match(stderr, /--azure-connection-string is required \(or AZURE_STORAGE_CONNECTION_STRING\)/);
  });

  it('requires a container with a valid Azure name', async () => {
    const missing = await tug(['registry'], { AZURE_STORAGE_CONNECTION_STRING: CONNECTION });
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--container is required/);
    const invalid = await tug(['registry', '--container', 'Bad_Name'], { AZURE_STORAGE_CONNECTION_STRING: CONNECTION });
    assert.equal(invalid.code, 2);
    assert.match(invalid.stderr, /--container: "Bad_Name" is not a valid Azure container name/);
  });

  it('refuses sizes and addresses it cannot use', async () => {
    for (const [args, message] of [
      [['--cache-size', 'lots'], /--cache-size: expected a size/],
      [['--max-manifest-size', '10'], /--max-manifest-size: must be between/],
      [['--listen', 'nowhere'], /--listen: expected HOST:PORT/],
      [['--htpasswd', '/nonexistent/htpasswd'], /--htpasswd: cannot read/],
      [['--admin', 'nowhere'], /--admin: expected HOST:PORT/],
      [['--proxy-remote', 'ftp://mirror.example'], /--proxy-remote: expected http\(s\):\/\/host/],
      [['--proxy-remote', 'https://registry-1.docker.io/v2/'], /--proxy-remote: expected http\(s\):\/\/host\[:port\] without path/],
      [['--proxy-remote', 'https://registry-1.docker.io', '--proxy-username', 'me'], /give both or neither/],
      [['--proxy-username', 'me', '--proxy-password', 'secret'], /only with --proxy-remote/],
      [['--proxy-remote', 'https://registry-1.docker.io', '--proxy-ttl', 'soon'], /--proxy-ttl/],
    ] as const) {
      const { code, stderr } = await tug(['registry', '--container', 'registry', ...args], { AZURE_STORAGE_CONNECTION_STRING: CONNECTION });
      assert.equal(code, 2, args.join(' '));
      assert.match(stderr, message);
    }
  });
});
