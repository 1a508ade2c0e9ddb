// A 1 GiB layer pushed the way docker and skopeo push (POST, one streamed
// PATCH, PUT ?digest=) must stream through the registry: its peak resident
// memory stays far below the layer's size.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { request } from 'node:http';
import { AzuriteServer } from '../helpers/azurite.ts';
import { RegistryClient } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';

const GIB = 1024 * 1024 * 1024;
const CHUNK = randomBytes(1024 * 1024);

/** Peak resident set size of a process, from /proc (kB → bytes). */
async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)![1]) * 1024;
}

/** Streams `size` bytes (CHUNK repeated) as one request body; resolves with the status. */
function streamBody(port: number, method: string, path: string, size: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers: { 'Content-Type': 'application/octet-stream', 'Content-Length': size } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < size) {
        sent += CHUNK.length;
        if (!req.write(CHUNK)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('bounded memory', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;

  before(async () => {
    azurite = await AzuriteServer.start();
    registry = await startRegistry({ connectionString: azurite.connectionString, args: ['--no-access-log'] });
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
  });

  it('streams a 1 GiB chunked push through without holding it in memory', { timeout: 120_000 }, async (t) => {
    const hash = createHash('sha256');
    for (let i = 0; i < GIB / CHUNK.length; i++) hash.update(CHUNK);
    const digest = `sha256:${hash.digest('hex')}`;
    const client = new RegistryClient(registry.url);
    const baseline = await peakRss(registry.child.pid!);
    const location = await client.startUpload('big/layer');
    assert.equal(await streamBody(registry.port, 'PATCH', location, GIB), 202);
    const done = await client.request('PUT', `${location}?digest=${digest}`);
    assert.equal(done.status, 201);
    const head = await client.request('HEAD', `/v2/big/layer/blobs/${digest}`);
    assert.equal(head.headers.get('content-length'), String(GIB));
    const peak = await peakRss(registry.child.pid!);
    t.diagnostic(`registry peak RSS ${Math.round(peak / 1024 / 1024)} MiB (baseline ${Math.round(baseline / 1024 / 1024)} MiB)`);
    // About (block concurrency + 2) × 8 MiB blocks plus runtime slack, whatever the layer's size.
    assert.ok(peak - baseline < 192 * 1024 * 1024, `peak RSS grew by ${Math.round((peak - baseline) / 1024 / 1024)} MiB pushing 1 GiB`);
  });
});
