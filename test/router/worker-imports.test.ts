// What a router worker loads (router/process/worker-main.ts's import graph):
// nothing only the primary needs, and not Node's bundled undici, which an ES
// import of node:http pulls in (router/core/node-http.ts). Each costs every
// worker RSS for nothing.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const WORKER_ENTRY = new URL('../../router/process/worker-main.ts', import.meta.url).href;

// Packages only the primary (etcd, ACME, the admin listener, the CLI) or other commands use.
const PRIMARY_ONLY = ['etcd3', '@grpc/grpc-js', 'protobufjs', 'acme-client', 'undici', 'pino-pretty', 'jose', 'commander', '@azure/storage-blob', 'yaml'];

const CHILD = `
import { registerHooks } from 'node:module';
const packages = new Set();
registerHooks({ load(url, context, next) {
  const m = /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(url);
  if (m !== null) packages.add(m[1]);
  return next(url, context);
} });
await import('${WORKER_ENTRY}');
console.log(JSON.stringify({ packages: [...packages], builtins: process.moduleLoadList.filter((m) => m.includes('undici')) }));
`;

describe('a router worker', () => {
  it('loads no primary-only package and not the bundled undici', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', CHILD], { timeout: 30_000 });
    const { packages, builtins } = JSON.parse(stdout) as { packages: string[]; builtins: string[] };
    assert.ok(packages.includes('pino'), `the graph was walked (packages: ${packages.join(', ')})`);
    assert.deepEqual(packages.filter((p) => PRIMARY_ONLY.includes(p)), []);
    assert.deepEqual(builtins, []);
  });
});
