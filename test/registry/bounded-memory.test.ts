// A 1 GiB layer pushed the way docker and skopeo push (POST, one streamed
// PATCH, PUT ?digest=) must stream through the registry: its peak resident
// memory stays far below the layer's size. So must a layer small enough to be
// staged in Azure while it arrives (upload-sessions.ts).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
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

/** Resets the process's peak RSS to its current RSS (Linux's clear_refs), so each test measures its own peak. */
async function resetPeakRss(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

/** Streams `size` bytes (CHUNK repeated) as one request body (chunked: without Content-Length); resolves with the status. */
function streamBody(port: number, method: string, path: string, size: number, chunked = false): Promise<number> {
  return new Promise((resolve, reject) => {
    const framing = chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': size };
    const req = request({ host: '127.0.0.1', port, method, path, headers: { 'Content-Type': 'application/octet-stream', ...framing } }, (res) => {
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
    await resetPeakRss(registry.child.pid!);
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

  it('stages a 200 MiB chunk in Azure as it arrives, with or without Content-Length, without holding it in memory', { timeout: 120_000 }, async (t) => {
    // Under the 256 MiB a copy takes, so the upload is staged in Azure (not written from the spool at the PUT).
    const size = 200 * 1024 * 1024;
    const hash = createHash('sha256');
    for (let i = 0; i < size / CHUNK.length; i++) hash.update(CHUNK);
    const digest = `sha256:${hash.digest('hex')}`;
    const client = new RegistryClient(registry.url);
    await resetPeakRss(registry.child.pid!);
    const baseline = await peakRss(registry.child.pid!);
    for (const chunked of [false, true]) {
      const repository = chunked ? 'staged/chunked' : 'staged/sized';
      const location = await client.startUpload(repository);
      assert.equal(await streamBody(registry.port, 'PATCH', location, size, chunked), 202);
      assert.equal((await client.request('PUT', `${location}?digest=${digest}`)).status, 201);
      const head = await client.request('HEAD', `/v2/${repository}/blobs/${digest}`);
      assert.equal(head.headers.get('content-length'), String(size));
    }
    assert.ok(!registry.output.includes('completes from its spool'), 'both were staged, not written again from the spool');
    const peak = await peakRss(registry.child.pid!);
    t.diagnostic(`registry peak RSS ${Math.round(peak / 1024 / 1024)} MiB (baseline ${Math.round(baseline / 1024 / 1024)} MiB)`);
    // (block concurrency + 2) × 8 MiB blocks for the chunked one, a streamed block's buffers for the other, plus slack: far below 200 MiB.
    assert.ok(peak - baseline < 96 * 1024 * 1024, `peak RSS grew by ${Math.round((peak - baseline) / 1024 / 1024)} MiB staging 2 × 200 MiB`);
  });
});
