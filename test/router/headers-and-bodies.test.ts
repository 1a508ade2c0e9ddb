// What crosses the proxy: hop-by-hop headers dropped both ways, X-Forwarded-*
// and a request id set, and bodies streamed both ways with bounded memory.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { execFileSync } from 'node:child_process';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';

const GiB = 1024 ** 3;

/** Peak resident memory of a process, in bytes (VmHWM). */
function peakRss(pid: number): number {
  const match = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match![1]) * 1024;
}

describe('headers and bodies across the proxy', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let echo: TestBackend;
  let sink: TestBackend;
  let source: TestBackend;

  before(async () => {
    etcd = await EtcdServer.start();
    echo = await startBackend('echo', (req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', connection: 'x-secret', 'x-secret': 'hop', 'keep-alive': 'timeout=5' });
      res.end(JSON.stringify(req.headers));
    });
    sink = await startBackend('sink', (req, res) => {
      let bytes = 0;
      req.on('data', (c: Buffer) => { bytes += c.length; });
      req.on('end', () => res.end(String(bytes)));
    });
    source = await startBackend('source', (_req, res) => {
      res.writeHead(200, { 'content-length': String(GiB) });
      const chunk = Buffer.alloc(64 * 1024, 120);
      let sent = 0;
      const pump = () => {
        while (sent < GiB) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
        res.end();
      };
      pump();
    });
    await etcd.put('/services/echo/@1', echo.address);
    await etcd.put('/services/sink/@1', sink.address);
    await etcd.put('/services/source/@1', source.address);
    router = await startRouter({ etcd: etcd.endpoint });
  });

  after(async () => {
    await router?.stop();
    await Promise.all([echo?.close(), sink?.close(), source?.close()]);
    await etcd?.close();
  });

  it('drops hop-by-hop request headers, including those named in Connection', async () => {
    const reply = await get(router.httpPort, 'echo.test', '/', {
      headers: { connection: 'keep-alive, x-drop-me', 'x-drop-me': '1', 'keep-alive': 'timeout=5', te: 'trailers', 'proxy-connection': 'keep-alive', 'x-kept': 'yes' },
    });
    const seen = JSON.parse(reply.body) as Record<string, string>;
    assert.equal(seen['x-kept'], 'yes');
    for (const name of ['x-drop-me', 'keep-alive', 'te', 'proxy-connection']) assert.equal(seen[name], undefined, `${name} reached the backend`);
    assert.equal(seen.host, 'echo.test', 'Host is passed through');
  });

  it('sets X-Forwarded-For (appending), -Proto and -Host, and passes or makes a request id', async () => {
    const first = JSON.parse((await get(router.httpPort, 'echo.test', '/', { headers: { 'x-forwarded-for': '203.0.113.7', 'x-forwarded-proto': 'https', 'x-forwarded-host': 'evil' } })).body);
    assert.equal(first['x-forwarded-for'], '203.0.113.7, 127.0.0.1');
    assert.equal(first['x-forwarded-proto'], 'http', 'a client cannot claim https');
    assert.equal(first['x-forwarded-host'], 'echo.test');
    assert.match(first['x-request-id'], /^[0-9a-f-]{36}$/);
    const given = await get(router.httpPort, 'echo.test', '/', { headers: { 'x-request-id': 'abc-1' } });
    assert.equal(JSON.parse(given.body)['x-request-id'], 'abc-1');
    assert.equal(given.headers['x-request-id'], 'abc-1', 'the response carries the id');
  });

  it('drops hop-by-hop response headers', async () => {
    const reply = await get(router.httpPort, 'echo.test');
    assert.equal(reply.headers['x-secret'], undefined);
    assert.equal(reply.headers['keep-alive'], undefined);
    assert.equal(reply.headers['content-type'], 'application/json');
  });

  it('streams a 1 GiB upload to the backend without growing the worker heap', async () => {
    const worker = Number(execFileSync('pgrep', ['-P', String(router.child.pid)]).toString().trim().split('\n')[0]);
    const chunk = Buffer.alloc(256 * 1024, 97);
    let sent = 0;
    const body = new Readable({
      read() {
        if (sent >= GiB) return void this.push(null);
        sent += chunk.length;
        this.push(chunk);
      },
    });
    const status = await new Promise<{ code: number; text: string }>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: router.httpPort, method: 'POST', path: '/upload', headers: { host: 'sink.test', 'content-length': String(GiB) }, agent: false }, (res) => {
        let text = '';
        res.on('data', (d) => { text += d; });
        res.on('end', () => resolve({ code: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      body.pipe(req);
    });
    assert.equal(status.code, 200);
    assert.equal(status.text, String(GiB), 'the backend received every byte');
    const peak = peakRss(worker);
    assert.ok(peak < 256 * 1024 * 1024, `worker peak RSS ${Math.round(peak / 2 ** 20)} MiB after a 1 GiB upload`);
  });

  it('streams a 1 GiB download without buffering it in the worker', async () => {
    const worker = Number(execFileSync('pgrep', ['-P', String(router.child.pid)]).toString().trim().split('\n')[0]);
    const received = await new Promise<number>((resolve, reject) => {
      const req = request({ host: '127.0.0.1', port: router.httpPort, path: '/big', headers: { host: 'source.test' }, agent: false }, (res) => {
        let bytes = 0;
        res.on('data', (d: Buffer) => { bytes += d.length; });
        res.on('end', () => resolve(bytes));
      });
      req.on('error', reject);
      req.end();
    });
    assert.equal(received, GiB);
    const peak = peakRss(worker);
    assert.ok(peak < 256 * 1024 * 1024, `worker peak RSS ${Math.round(peak / 2 ** 20)} MiB after a 1 GiB download`);
  });
});
