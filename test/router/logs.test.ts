// Logs for people and for machines: JSON when stdout is not a terminal, pino-pretty
// with --log-format pretty (in the primary and in every worker), and the access
// log as NCSA common/combined lines with --access-log-format.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { startRouter } from '../helpers/router.ts';
import { TUG } from '../helpers/tug-process.ts';
import { waitFor } from '../helpers/wait.ts';

const COMBINED = /^(\S+) - - \[(\d{2})\/(\w{3})\/(\d{4}):(\d{2}):(\d{2}):(\d{2}) \+0000\] "(\S+) (\S+) (HTTP\/[\d.]+)" (\d{3}) (\d+|-) "(.*)" "(.*)"$/;

describe('router logs', () => {
  let etcd: EtcdServer;
  let backend: TestBackend;

  before(async () => {
    etcd = await EtcdServer.start();
    backend = await startBackend('logged');
    await etcd.put('/services/logged/@1', backend.address);
  });

  after(async () => {
    await backend?.close();
    await etcd?.close();
  });

  it('writes the access log as NCSA combined lines, and its own logs as JSON when stdout is not a terminal', async () => {
    const router = await startRouter({ etcd: etcd.endpoint, workers: 2, args: ['--access-log-format', 'combined'] });
    try {
      const before = Date.now();
      const reply = await get(router.httpPort, 'logged.test', '/page?q=1', { headers: { referer: 'http://example.com/from', 'user-agent': 'tug-test/1.0' } });
      assert.equal(reply.status, 200);
      const line = await waitFor(() => router.output.split('\n').find((l) => l.includes('"GET /page?q=1 ')), { what: 'the access-log line' });
      const match = COMBINED.exec(line);
      assert.ok(match, `not a combined-format line: ${line}`);
      const [, , day, month, year, hour, minute, second, method, target, protocol, status, bytes] = match;
      assert.deepEqual([method, target, protocol, status, bytes], ['GET', '/page?q=1', 'HTTP/1.1', '200', String(Buffer.byteLength(reply.body))]);
      const logged = Date.parse(`${day} ${month} ${year} ${hour}:${minute}:${second} UTC`);
      assert.ok(logged >= Math.floor(before / 1000) * 1000 && logged <= Date.now(), `time ${line} is not the request's`);
      // The router's own records stay machine-readable.
      // (Logged once every worker listens; /healthz is 200 with the first.)
      await waitFor(() => router.logs().some((r) => r.msg === 'router listening'), { what: 'a JSON "router listening" record' });
      assert.ok(!router.logs().some((r) => r.component === 'access'), 'an access record was written as JSON too');
    } finally {
      await router.stop();
    }
  });

  it('fills the client columns of the combined format (remote address, Referer, User-Agent)', async () => {
    const router = await startRouter({ etcd: etcd.endpoint, args: ['--access-log-format', 'combined'] });
    try {
      await get(router.httpPort, 'logged.test', '/client', { headers: { referer: 'http://example.com/from', 'user-agent': 'tug-test/1.0' } });
      const line = await waitFor(() => router.output.split('\n').find((l) => l.includes('"GET /client ')), { what: 'the access-log line' });
      const match = COMBINED.exec(line);
      assert.ok(match, line);
      assert.deepEqual([match[1], match[13], match[14]], ['127.0.0.1', 'http://example.com/from', 'tug-test/1.0']);
    } finally {
      await router.stop();
    }
  });

  it('writes the common format without the referer and user-agent columns', async () => {
    const router = await startRouter({ etcd: etcd.endpoint, args: ['--access-log-format', 'common'] });
    try {
      await get(router.httpPort, 'logged.test', '/common');
      const line = await waitFor(() => router.output.split('\n').find((l) => l.includes('"GET /common ')), { what: 'the access-log line' });
      assert.match(line, /^\S+ - - \[[^\]]+\] "GET \/common HTTP\/1\.1" 200 \d+$/);
    } finally {
      await router.stop();
    }
  });

  it('renders every log line for people with --log-format pretty, workers and access log included', async () => {
    const router = await startRouter({ etcd: etcd.endpoint, workers: 2, args: ['--log-format', 'pretty'] });
    try {
      await get(router.httpPort, 'logged.test', '/pretty');
      await waitFor(() => router.output.includes('/pretty') && router.output.includes('router listening'), { what: 'the access record and "router listening"' });
      const lines = router.output.split('\n').filter((l) => l.trim() !== '');
      const json = lines.filter((l) => {
        try {
          return typeof JSON.parse(l) === 'object';
        } catch {
          return false;
        }
      });
      assert.deepEqual(json, [], 'JSON lines in pretty output');
      assert.ok(lines.some((l) => /^\[\d{2}:\d{2}:\d{2}\.\d{3}\] INFO: router: router listening/.test(l)), `no readable "router listening" line in:\n${lines.join('\n')}`);
      assert.ok(lines.some((l) => /INFO: access: GET logged\.test\/pretty 200 \{.*"backend":"127\.0\.0\.1:\d+"/.test(l)), 'no readable access line from the worker');
    } finally {
      await router.stop();
    }
  });

  it('refuses an unknown --log-format or --access-log-format with one line and exit code 2', async () => {
    for (const [flag, value] of [['--log-format', 'fancy'], ['--access-log-format', 'apache']]) {
      const child = spawn(process.execPath, [TUG, 'router', flag, value], { stdio: ['ignore', 'pipe', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d) => { stderr += d; });
      const code = await new Promise((resolve) => child.once('exit', resolve));
      assert.equal(code, 2);
      assert.match(stderr, new RegExp(`^tug: ${flag}: expected one of .*\\n$`));
    }
  });
});
