// The registry's dashboard on its admin listener, loaded in a real browser
// (Debian's chromium, headless, over the DevTools protocol) against a real
// registry on Azurite: it shows the pushes' requests by route with their
// rates, the Azure operations with their latency, the node cache, uploads and
// the configuration (a mirror's upstream too); what the operator configured is
// shown as text and never run; the connection string is never shown. The run's
// screenshot is kept as test/artifacts/registry-dashboard.png
// (docs/registry-dashboard.png is one of them).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AzuriteServer } from '../helpers/azurite.ts';
import { Chromium, type Page } from '../helpers/chromium.ts';
import { scrape, type Sample } from '../helpers/metrics.ts';
import { OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST } from '../helpers/oci-layout.ts';
import { RegistryClient, sha256 } from '../helpers/registry-client.ts';
import { startRegistry, type RegistryProcess } from '../helpers/registry.ts';
import { waitFor } from '../helpers/wait.ts';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
/** The node cache's directory, as the operator named it: the page must show it as text. */
const MARKUP = '<script>alert(1)</script>';

describe('the registry dashboard in a browser', () => {
  let azurite: AzuriteServer;
  let scratch: string;
  let cacheDir: string;
  let registry: RegistryProcess;
  let mirror: RegistryProcess;
  let browser: Chromium;
  let page: Page;
  let layerDigest: string;

  before(async () => {
    azurite = await AzuriteServer.start();
    scratch = await mkdtemp(join(tmpdir(), 'tug-registry-dashboard-'));
    // `<script>alert(1)</script>` as a path: a directory "<script>alert(1)<" holding "script>".
    cacheDir = join(scratch, MARKUP);
    await mkdir(cacheDir, { recursive: true });
    [registry, browser] = await Promise.all([
      startRegistry({ connectionString: azurite.connectionString, container: 'images', args: ['--cache-dir', cacheDir, '--block-size', '64KiB', '--root-directory', 'tenants/blue'] }),
      Chromium.launch(),
    ]);
    mirror = await startRegistry({ connectionString: azurite.connectionString, container: 'mirror', args: ['--proxy-remote', registry.url] });
  });

  after(async () => {
    // Every process is ended even if an earlier step fails: one left running would hold the test runner.
    try {
      page?.close();
      await browser?.close();
    } finally {
      await Promise.allSettled([mirror?.close(), registry?.close()]);
      await azurite?.close();
      if (scratch) await rm(scratch, { recursive: true, force: true });
    }
  });

  const metrics = async (): Promise<Sample[]> => (await scrape(registry.adminPort!)).samples;
  const sum = (samples: Sample[], name: string, labels: Record<string, string>) => samples
    .filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v))
    .reduce((total, s) => total + s.value, 0);
  /** The cells of the table rows whose data attribute has this value. */
  const cells = (table: string, attribute: string, value: string) =>
    page.evaluate<string[]>(`[...document.querySelectorAll('#${table} tr[data-${attribute}="${value}"] td')].map((c) => c.textContent)`);

  it('shows the pushes\' requests by route and the Azure operations they made, as /metrics counts them', async () => {
    const client = new RegistryClient(registry.url);
    // 200,000 bytes in 64 KiB blocks: four staged blocks and one commit (and one block for the config).
    layerDigest = await client.pushBlob('team/app', randomBytes(200_000));
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    const configDigest = await client.pushBlob('team/app', config);
    const manifest = {
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: configDigest, size: config.length },
      layers: [{ mediaType: OCI_LAYER_GZIP, digest: layerDigest, size: 200_000 }],
    };
    assert.equal((await client.putManifest('team/app', 'v1', manifest, OCI_MANIFEST)).status, 201);
    for (let i = 0; i < 2; i++) await (await client.request('GET', `/v2/team/app/blobs/${layerDigest}`)).arrayBuffer();
    assert.equal((await client.request('GET', '/v2/team/app/manifests/missing')).status, 404);

    page = await browser.open(`http://127.0.0.1:${registry.adminPort}/`);
    const expected = await metrics();
    for (const route of ['upload', 'manifest', 'blob']) {
      const requests = sum(expected, 'tug_registry_requests_total', { route });
      const clientErrors = sum(expected, 'tug_registry_requests_total', { route, code_class: '4xx' });
      const row = await waitFor(async () => {
        const found = await cells('routes', 'route', route);
        return found.length === 10 && found[1] === String(requests) ? found : null;
      }, { timeout: 15_000, interval: 200, what: `the ${route} route with ${requests} requests` });
      assert.equal(row[3], String(clientErrors), `${route} 4xx: ${row.join(' | ')}`);
    }
    const upload = await cells('routes', 'route', 'upload');
    assert.match(upload[8], /^(19\d|2\d\d) KiB$/, `the pushed bytes came in on the upload route: ${upload[8]}`);

    for (const operation of ['stage_block', 'commit_block_list', 'download']) {
      const row = await cells('azure', 'operation', operation);
      const counted = sum(expected, 'tug_registry_azure_operations_total', { operation });
      assert.equal(row[1], String(counted), `${operation}: ${row.join(' | ')}`);
      // p50 and p99 from the histogram buckets: a latency, never a dash, once there were operations.
      assert.match(row[3], /^[\d.]+ (ms|s)( \*)?$/, `${operation} p50: ${row[3]}`);
      assert.match(row[4], /^[\d.]+ (ms|s)( \*)?$/, `${operation} p99: ${row[4]}`);
      assert.equal(row[6], '0', `${operation} errors`);
    }
    // The layer's four blocks and the config's one.
    assert.equal((await cells('azure', 'operation', 'stage_block'))[1], '5');
  });

  it('shows requests per second and bytes per second from the registry\'s own counters', async () => {
    // The page polls every 2 s; traffic between two polls shows as a rate.
    const client = new RegistryClient(registry.url);
    const rated = await waitFor(async () => {
      await (await client.request('GET', `/v2/team/app/blobs/${layerDigest}`)).arrayBuffer();
      const row = await cells('routes', 'route', 'blob');
      return row.length === 10 && Number(row[2]) > 0 && /KiB\/s$/.test(row[7]) ? row : null;
    }, { timeout: 20_000, interval: 300, what: 'a request rate and bytes out per second on the blob route' });
    assert.equal(rated[5], '0.0%', 'no 5xx on the blob route');
  });

  it('shows the node cache, uploads in progress, health and the configuration', async () => {
    const expected = await metrics();
    const hits = sum(expected, 'tug_registry_cache_hits_total', {});
    const misses = sum(expected, 'tug_registry_cache_misses_total', {});
    assert.ok(hits > 0 && misses > 0, `hits ${hits}, misses ${misses}`);
    const text = await waitFor(async () => {
      const body = await page.evaluate<string>('document.body.innerText');
      return new RegExp(`hits / misses\\s+${hits} / ${misses}\\b`).test(body) ? body : null;
    }, { timeout: 15_000, interval: 200, what: `the cache's ${hits} hits and ${misses} misses` });
    const share = (100 * hits / (hits + misses)).toFixed(1);
    assert.match(text, new RegExp(`hit ratio\\s+${share.replace('.', '\\.')}% since start`));
    assert.match(text, new RegExp(`entries\\s+${sum(expected, 'tug_registry_cache_entries', {})}\\b`));
    assert.match(text, /uploads now\s+0 sessions open, 0 streaming/);
    assert.match(text, /status\s+serving\s+container\s+container ready\s+probe\s+\/healthz answers 200/);
    assert.match(text, /root directory\s+tenants\/blue/);
    assert.match(text, /serves\s+its own images \(push and pull\)/);
    assert.match(text, /blob reads\s+served by the registry/, 'without --blob-redirect');
    assert.match(text, /mode\s+none \(anyone who reaches it\)/);
    assert.match(await page.evaluate<string>('document.title'), /^Tug registry images$/);
  });

  it('shows a directory named with markup as text and never runs it', async () => {
    const dir = await page.evaluate<string>(`[...document.querySelectorAll('#overview dd')].map((d) => d.textContent).find((t) => t.includes('script')) ?? ''`);
    assert.equal(dir, cacheDir);
    assert.equal(await page.evaluate<number>('document.scripts.length'), 1, 'a script element came from the data');
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.exceptions, []);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot(`${ARTIFACTS}registry-dashboard.png`);
  });

  it('answers with the same Content-Security-Policy as the router\'s and never shows the connection string', async () => {
    const [html, json] = await Promise.all([fetch(`http://127.0.0.1:${registry.adminPort}/`), fetch(`http://127.0.0.1:${registry.adminPort}/dashboard.json`)]);
    for (const res of [html, json]) {
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-security-policy') ?? '', /^default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self';/);
      assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
    }
    await html.arrayBuffer();
    const body = await json.text();
    const key = /AccountKey=([^;]+)/.exec(azurite.connectionString)![1];
    assert.ok(!body.includes(key), 'the account key is in dashboard.json');
    assert.equal((JSON.parse(body) as { config: { container: string } }).config.container, 'images');
  });

  it('shows a mirror\'s upstream', async () => {
    const mirrorPage = await browser.open(`http://127.0.0.1:${mirror.adminPort}/`);
    try {
      const text = await waitFor(async () => {
        const body = await mirrorPage.evaluate<string>('document.body.innerText');
        return body.includes('read-only mirror') ? body : null;
      }, { timeout: 15_000, interval: 200, what: 'the mirror\'s mode card' });
      assert.match(text, new RegExp(`upstream\\s+${registry.url.replace(/\./g, '\\.')}\\s+tags re-checked\\s+after 5 min\\s+upstream login\\s+anonymous`));
      assert.match(text, /node cache\s+state\s+off/i);
    } finally {
      mirrorPage.close();
    }
  });
});
