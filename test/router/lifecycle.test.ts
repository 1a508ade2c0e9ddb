// Operations: SIGTERM drains in-flight requests and exits 0, a dead worker is
// replaced while the others serve, /routes shows the table, access log lines.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { startRouter } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';

describe('router lifecycle', () => {
  let etcd: EtcdServer;
  let slow: TestBackend;
  let fast: TestBackend;

  before(async () => {
    etcd = await EtcdServer.start();
    slow = await startBackend('slow', (_req, res) => {
      setTimeout(() => res.end('slow done\n'), 700);
    });
    fast = await startBackend('fast');
    await etcd.put('/services/slow/@1', slow.address);
    await etcd.put('/services/fast/@1', fast.address);
  });

  after(async () => {
    await Promise.all([slow?.close(), fast?.close()]);
    await etcd?.close();
  });

  it('on SIGTERM finishes in-flight requests, turns /healthz to 503, refuses new connections and exits 0', async () => {
    const router = await startRouter({ etcd: etcd.endpoint, workers: 2 });
    try {
      const inFlight = [get(router.httpPort, 'slow.test'), get(router.httpPort, 'slow.test'), get(router.httpPort, 'slow.test')];
      await waitFor(() => slow.requests.length >= 3, { what: 'requests in flight at the backend' });
      router.child.kill('SIGTERM');
      await waitFor(async () => (await router.health()).status === 503, { timeout: 2000, what: '/healthz 503 while draining' });
      const replies = await Promise.all(inFlight);
      assert.deepEqual(replies.map((r) => [r.status, r.body]), Array(3).fill([200, 'slow done\n']));
      assert.equal(await router.exited, 0);
      await assert.rejects(get(router.httpPort, 'fast.test'), /ECONNREFUSED/);
    } finally {
      await router.stop('SIGKILL');
    }
  });

  it('replaces a worker that dies and keeps serving', async () => {
    const router = await startRouter({ etcd: etcd.endpoint, workers: 2 });
    try {
      // /healthz is 200 once one worker listens; a worker killed before it listens is a failed start, not a death.
      await waitFor(async () => (await router.health()).body.workers.listening === 2, { what: 'both workers listening' });
      const workers = execFileSync('pgrep', ['-P', String(router.child.pid)]).toString().trim().split('\n').map(Number);
      assert.equal(workers.length, 2);
      process.kill(workers[0], 'SIGKILL');
      await waitFor(() => router.logs().some((l) => l.msg === 'router worker died; restarting it'), { what: 'restart logged' });
      await waitFor(async () => (await router.health()).body.workers.listening === 2, { timeout: 5000, what: 'two workers listening again' });
      const replacement = execFileSync('pgrep', ['-P', String(router.child.pid)]).toString().trim().split('\n').map(Number);
      assert.ok(!replacement.includes(workers[0]));
      // The replacement was seeded with the whole table.
      for (let i = 0; i < 20; i++) assert.equal((await get(router.httpPort, 'fast.test')).status, 200);
    } finally {
      await router.stop();
    }
  });

  it('writes one access-log line per request and shows the table on /routes', async () => {
    const router = await startRouter({ etcd: etcd.endpoint });
    try {
      const reply = await get(router.httpPort, 'fast.test', '/some/path?x=1', { headers: { 'x-request-id': 'trace-123' } });
      assert.equal(reply.headers['x-request-id'], 'trace-123');
      const line = await waitFor(() => router.logs().find((l) => l.component === 'access' && l.id === 'trace-123'), { what: 'access log line' });
      assert.equal(line.method, 'GET');
      assert.equal(line.host, 'fast.test');
      assert.equal(line.path, '/some/path?x=1');
      assert.equal(line.status, 200);
      assert.equal(line.bytes, 'fast\n'.length);
      assert.equal(line.backend, fast.address);
      assert.equal(typeof line.ms, 'number');
      const routes = await router.routes();
      assert.deepEqual(routes.services.fast, [{ instance: '@1', address: fast.address, weight: 1 }]);
      assert.equal(routes.domain, 'test');
      assert.equal(routes.etcd.synced, true);
    } finally {
      await router.stop();
    }
  });

  it('refuses an invalid flag at start-up with one clear line and exit code 2', async () => {
    const { spawnSync } = await import('node:child_process');
    const result = spawnSync(process.execPath, [new URL('../../bin/tug.ts', import.meta.url).pathname, 'router', '--http', 'nowhere', '--etcd', etcd.endpoint], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--http: expected HOST:PORT/);
  });
});
