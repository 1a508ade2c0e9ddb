// The dashboard on the admin listener, loaded in a real browser (Debian's
// chromium, headless, over the DevTools protocol): it shows the services with
// their instances' live state (an ejected backend marked so), the routes, the
// certificates, etcd sync, the workers and the cluster's routers; it shows
// markup stored in etcd as text and never runs it. The run's screenshot is
// kept as test/artifacts/dashboard.png (docs/dashboard.png is one of them).
// (Here, not in test/router/: the page does not depend on the HTTP engine, so it runs once.)
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { fileURLToPath } from 'node:url';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { Chromium, type Page } from '../helpers/chromium.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';

const ARTIFACTS = fileURLToPath(new URL('../artifacts/', import.meta.url));
const MARKUP_PATH = '/<script>window.pwned=1</script>';

/** A backend that accepts TCP connections and closes them at once: every request to it fails. */
function startClosingBackend(): Promise<{ server: Server; address: string }> {
  const server = createServer((socket) => socket.destroy());
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve({ server, address: `127.0.0.1:${(server.address() as { port: number }).port}` })));
}

describe('the router dashboard in a browser', () => {
  let etcd: EtcdServer;
  let certificates: TestCertificates;
  let good: TestBackend;
  let other: TestBackend;
  let closing: { server: Server; address: string };
  let router: RouterProcess;
  let second: RouterProcess;
  let browser: Chromium;
  let page: Page;

  before(async () => {
    certificates = await TestCertificates.create();
    const site = await certificates.issue('shop.example.com', ['shop.example.com', 'www.shop.example.com'], { days: 10 });
    etcd = await EtcdServer.start();
    [good, other, closing] = await Promise.all([startBackend('good'), startBackend('other'), startClosingBackend()]);
    await etcd.put('/services/shop/@1', good.address);
    await etcd.put('/services/shop/@2', closing.address);
    await etcd.put('/services/api/@1', other.address);
    await etcd.put('/services/broken/@1', closing.address);
    await etcd.put('/routes/shop-www', JSON.stringify({ hosts: ['www.shop.example.com'], paths: ['/', MARKUP_PATH], service: 'shop', httpsRedirect: false }));
    await etcd.put('/routes/api', JSON.stringify({ hosts: ['api.example.com'], paths: ['/v1/'], service: 'api', balance: 'least-connections', hsts: { maxAge: 31536000 } }));
    await etcd.put('/tls/shop', site.etcdValue);
    const ejection = ['--max-fails', '1', '--eject-time', '60s', '--eject-max', '60s'];
    [router, second] = await Promise.all([
      startRouter({ etcd: etcd.endpoint, workers: 2, https: true, args: [...ejection, '--node-name', 'edge-1'] }),
      startRouter({ etcd: etcd.endpoint, workers: 1, args: ['--node-name', 'edge-2'] }),
    ]);
    browser = await Chromium.launch();
  });

  after(async () => {
    // Every process is ended even if an earlier step fails: one left running would hold the test runner.
    try {
      page?.close();
      await browser?.close();
    } finally {
      await Promise.allSettled([router?.stop(), second?.stop()]);
    }
    await Promise.all([good?.close(), other?.close(), new Promise((resolve) => closing?.server.close(resolve))]);
    await etcd?.close();
    await certificates?.close();
  });

  it('shows each service with its instances and marks the backend that fails as ejected', async () => {
    // The closing backend fails: with --max-fails 1 its first failure ejects it (the request is retried on the good one).
    for (let i = 0; i < 6; i++) assert.equal((await get(router.httpPort, 'www.shop.example.com')).status, 200);
    for (let i = 0; i < 3; i++) await get(router.httpPort, 'broken.test');
    for (let i = 0; i < 5; i++) await get(router.httpPort, 'api.example.com', '/v1/items');
    page = await browser.open(`http://127.0.0.1:${router.adminPort}/`);
    const rows = await waitFor(async () => {
      const found = await page.evaluate<{ text: string; state: string }[]>(`[...document.querySelectorAll('#services tr.instance[data-service="shop"]')].map((r) => ({ text: r.textContent, state: r.dataset.state }))`);
      return found.length === 2 && found.some((r) => r.state === 'ejected') ? found : null;
    }, { timeout: 15_000, interval: 200, what: 'the shop service with an ejected instance' });
    const ejected = rows.find((r) => r.text.includes(closing.address));
    const healthy = rows.find((r) => r.text.includes(good.address));
    assert.equal(ejected?.state, 'ejected', JSON.stringify(rows));
    assert.match(ejected!.text, /ejected until \S+/);
    assert.equal(healthy?.state, 'healthy', JSON.stringify(rows));
    const summary = await page.evaluate<string>(`document.querySelector('#services tr.service[data-service="shop"]').textContent`);
    assert.match(summary, /2 instances.*1 ejected/);
  });

  it('shows requests per second and the 5xx share from the router\'s own counters', async () => {
    // The page polls every 2 s; traffic between two polls shows as a rate.
    for (let i = 0; i < 4; i++) assert.equal((await get(router.httpPort, 'broken.test')).status, 502);
    const cells = await waitFor(async () => {
      const values = await page.evaluate<string[]>(`[...document.querySelectorAll('#services tr.service[data-service="broken"] td.num')].map((c) => c.textContent)`);
      return values.length >= 3 && values[1] !== '—' && values[2] === '100.0%' ? values : null;
    }, { timeout: 15_000, interval: 200, what: 'a rate and a 100% 5xx share for the broken service' });
    assert.ok(Number(cells[1]) > 0, `req/s ${cells[1]}`);
  });

  it('shows routes, certificates, etcd sync and the workers', async () => {
    const text = await waitFor(() => page.evaluate<string>('document.body.innerText'), { what: 'the page text' });
    assert.match(text, /shop-www\s+www\.shop\.example\.com\s+\/, \/<script>/);
    assert.match(text, /api\s+api\.example\.com\s+\/v1\/\s+api\s+least-connections, HSTS 31536000 s/);
    assert.match(text, /shop\s+shop\.example\.com, www\.shop\.example\.com\s+\d{4}-\d{2}-\d{2} \((9|10) days\)\s+etcd/);
    assert.match(text, /etcd\s+state\s+connected/i);
    const revision = (await router.health()).body.etcd.revision as number;
    assert.match(text, new RegExp(`revision applied\\s+${revision}\\b`));
    assert.match(text, /listening\s+2 of 2/);
  });

  it('shows markup stored in etcd as text and never runs it', async () => {
    const cell = await page.evaluate<string>(`[...document.querySelectorAll('#routes td')].map((c) => c.textContent).find((t) => t.includes('script')) ?? ''`);
    assert.ok(cell.includes(MARKUP_PATH), `route paths cell: ${cell}`);
    assert.equal(await page.evaluate<string>('typeof window.pwned'), 'undefined');
    assert.equal(await page.evaluate<number>('document.scripts.length'), 1, 'a script element came from the data');
    assert.deepEqual(page.dialogs, []);
    assert.deepEqual(page.exceptions, []);
  });

  it('shows every router of the cluster from etcd, with the revision each applied', async () => {
    const routers = await waitFor(async () => {
      const found = await page.evaluate<string[]>(`[...document.querySelectorAll('#routers tr[data-router]')].map((r) => r.textContent)`);
      return found.length === 2 && found.every((t) => t.includes('in sync')) ? found : null;
    }, { timeout: 15_000, interval: 200, what: 'both routers in sync in the cluster view' });
    assert.match(routers[0], /^edge-1/);
    assert.match(routers[1], /^edge-2/);
    await mkdir(ARTIFACTS, { recursive: true });
    await page.screenshot(`${ARTIFACTS}dashboard.png`);
  });
});
