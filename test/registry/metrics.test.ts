// The registry's admin listener: /metrics in Prometheus text that Debian's
// promtool accepts, counting requests by route and status class, bytes in and
// out, Azure operations and their latency, the node cache and uploads in
// progress; /healthz for probes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzuriteServer } from '../helpers/azurite.ts';
import { promtool, scrape, valueOf, type Sample } from '../helpers/metrics.ts';
import { RegistryClient, sha256 } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';

describe('registry metrics', () => {
  let azurite: AzuriteServer;
  let registry: RegistryProcess;
  let client: RegistryClient;
  let cacheDir: string;

  before(async () => {
    azurite = await AzuriteServer.start();
    cacheDir = await mkdtemp(join(tmpdir(), 'tug-registry-metrics-cache-'));
    // A 1 MiB cache: two 700 KB blobs cannot both stay, so reading both evicts one.
    registry = await startRegistry({ connectionString: azurite.connectionString, args: ['--cache-dir', cacheDir, '--cache-size', '1MiB', '--block-size', '256KiB'] });
    client = new RegistryClient(registry.url);
  });

  after(async () => {
    await registry?.close();
    await azurite?.close();
    if (cacheDir) await rm(cacheDir, { recursive: true, force: true });
  });

  const metrics = async (): Promise<Sample[]> => (await scrape(registry.adminPort!)).samples;
  const sum = (samples: Sample[], name: string, labels: Record<string, string> = {}) => samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);

  it('counts requests by route, method and status class, and the bytes each route moved', async () => {
    const before = await metrics();
    const content = randomBytes(300_000);
    const digest = await client.pushBlob('counted', content);
    const get = await client.request('GET', `/v2/counted/blobs/${digest}`);
    assert.equal(Buffer.from(await get.arrayBuffer()).length, content.length);
    assert.equal((await client.request('GET', '/v2/counted/manifests/missing')).status, 404);
    await (await client.request('GET', '/v2/')).arrayBuffer();
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string>) => sum(after, name, labels) - sum(before, name, labels);
    assert.equal(delta('tug_registry_requests_total', { route: 'upload', method: 'POST', code_class: '2xx' }), 1);
    assert.equal(delta('tug_registry_requests_total', { route: 'blob', method: 'GET', code_class: '2xx' }), 1);
    assert.equal(delta('tug_registry_requests_total', { route: 'manifest', method: 'GET', code_class: '4xx' }), 1);
    assert.equal(delta('tug_registry_requests_total', { route: 'base', method: 'GET', code_class: '2xx' }), 1);
    assert.ok(delta('tug_registry_received_bytes_total', { route: 'upload' }) >= content.length, 'the pushed bytes came in on the upload route');
    const sent = delta('tug_registry_sent_bytes_total', { route: 'blob' });
    assert.ok(sent >= content.length && sent < content.length + 2000, `the blob went out once, with its headers: ${sent}`);
    assert.equal(delta('tug_registry_request_duration_seconds_count', { route: 'blob' }), 1);
  });

  it('counts and times Azure operations by operation: staged blocks, their commit, properties and downloads', async () => {
    const before = await metrics();
    const content = randomBytes(600_000);
    const digest = await client.pushBlob('azure', content);
    await (await client.request('GET', `/v2/azure/blobs/${digest}`)).arrayBuffer();
    const after = await metrics();
    const delta = (name: string, labels: Record<string, string>) => sum(after, name, labels) - sum(before, name, labels);
    // 600,000 bytes in 256 KiB blocks: three blocks, one commit.
    assert.equal(delta('tug_registry_azure_operations_total', { operation: 'stage_block', outcome: 'ok' }), 3);
    assert.equal(delta('tug_registry_azure_operations_total', { operation: 'commit_block_list', outcome: 'ok' }), 1);
    assert.ok(delta('tug_registry_azure_operations_total', { operation: 'download', outcome: 'ok' }) >= 1);
    assert.ok(delta('tug_registry_azure_operations_total', { operation: 'get_properties' }) >= 1);
    assert.equal(delta('tug_registry_azure_operation_duration_seconds_count', { operation: 'stage_block' }), 3);
    assert.ok(delta('tug_registry_azure_operation_duration_seconds_sum', { operation: 'stage_block' }) > 0);
  });

  it('counts node-cache misses, hits and evictions', async () => {
    const first = await client.pushBlob('cached', randomBytes(700_000));
    const second = await client.pushBlob('cached', randomBytes(700_000));
    const before = await metrics();
    for (const digest of [first, first, second, first]) await (await client.request('GET', `/v2/cached/blobs/${digest}`)).arrayBuffer();
    const after = await metrics();
    const delta = (name: string) => sum(after, name) - sum(before, name);
    assert.equal(delta('tug_registry_cache_misses_total'), 3, 'the first read of each blob, and the first again once evicted');
    assert.equal(delta('tug_registry_cache_hits_total'), 1, 'the second read of the first blob hit');
    assert.equal(delta('tug_registry_cache_fills_total'), 3);
    // Whatever earlier tests left is evicted too: at least the two blobs that pushed each other out.
    assert.ok(delta('tug_registry_cache_evictions_total') >= 2, 'each 700 KB blob pushed the other out of 1 MiB');
    assert.equal(valueOf(after, 'tug_registry_cache_entries'), 1);
    assert.ok(valueOf(after, 'tug_registry_cache_bytes')! <= 1024 * 1024);
  });

  it('shows chunked upload sessions in progress until they complete', async () => {
    const sessions = async () => valueOf(await metrics(), 'tug_registry_uploads_in_progress', { kind: 'session' });
    const open = await sessions();
    const location = await client.startUpload('sessions');
    assert.equal(await sessions(), open! + 1);
    const content = randomBytes(1000);
    await (await client.request('PATCH', location, { body: content })).arrayBuffer();
    assert.equal((await client.request('PUT', `${location}?digest=${sha256(content)}`)).status, 201);
    assert.equal(await sessions(), open);
  });

  it('passes promtool check metrics', async () => {
    const { text } = await scrape(registry.adminPort!);
    const result = await promtool(text);
    assert.equal(result.code, 0, `promtool check metrics:\n${result.output}\n---\n${text}`);
  });

  it('answers /healthz with 200 while serving', async () => {
    const res = await fetch(`http://127.0.0.1:${registry.adminPort}/healthz`);
    assert.equal(res.status, 200);
    assert.equal(((await res.json()) as { status: string }).status, 'serving');
  });

  it('has no admin listener with --admin off', async () => {
    const off = await startRegistry({ connectionString: azurite.connectionString, args: ['--admin', 'off'] });
    try {
      const listening = execFileSync('ss', ['-Hltnp'], { encoding: 'utf8' }).split('\n').filter((l) => l.includes(`pid=${off.child.pid},`));
      assert.deepEqual(listening.map((l) => l.split(/\s+/)[3]), [`127.0.0.1:${off.port}`], 'only the registry listener');
      assert.ok(off.logs().some((l) => l.msg === 'registry listening' && l.admin === 'off'));
    } finally {
      await off.close();
    }
  });
});
