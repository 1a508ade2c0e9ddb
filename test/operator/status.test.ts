// `tug status` against a real etcd and real routers: every router registered at
// /routers/<node> with the revision it applied, services, routes and the
// certificates expiring within 21 days, as tables or JSON; a router that stops
// applying changes is flagged stale; exit codes for scripts.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { freePort } from '../helpers/ports.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { TUG } from '../helpers/tug-process.ts';
import { waitFor } from '../helpers/wait.ts';

function tugStatus(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [TUG, 'status', ...args], { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : -1, stdout, stderr });
    });
  });
}

describe('tug status', () => {
  let etcd: EtcdServer;
  let certificates: TestCertificates;
  let backend: TestBackend;
  let routers: RouterProcess[] = [];

  before(async () => {
    certificates = await TestCertificates.create();
    const [soon, later] = await Promise.all([
      certificates.issue('soon.example.com', ['soon.example.com'], { days: 5 }),
      certificates.issue('later.example.com', ['later.example.com'], { days: 60 }),
    ]);
    etcd = await EtcdServer.start();
    backend = await startBackend('app');
    await etcd.put('/services/app/@1', backend.address);
    await etcd.put('/services/app/@2', JSON.stringify({ host: '127.0.0.1', port: 1, weight: 5 }));
    await etcd.put('/routes/app-www', JSON.stringify({ hosts: ['www.example.com'], service: 'app', httpsRedirect: true }));
    await etcd.put('/tls/soon', soon.etcdValue);
    await etcd.put('/tls/later', later.etcdValue);
    routers = await Promise.all([
      startRouter({ etcd: etcd.endpoint, args: ['--node-name', 'edge-a'] }),
      startRouter({ etcd: etcd.endpoint, https: true, args: ['--node-name', 'edge-b'] }),
    ]);
  });

  after(async () => {
    await Promise.all(routers.map((r) => {
      r.child.kill('SIGCONT');
      return r.stop();
    }));
    await backend?.close();
    await etcd?.close();
    await certificates?.close();
  });

  it('lists every router with the revision it applied, the services, the routes and the certificates expiring within 21 days', async () => {
    const current = await etcd.revision();
    const result = await waitFor(async () => {
      const run = await tugStatus('--etcd', etcd.endpoint);
      return /edge-a .*in sync/.test(run.stdout) && /edge-b .*in sync/.test(run.stdout) ? run : null;
    }, { timeout: 20_000, interval: 200, what: 'both routers in sync' });
    const out = result.stdout;
    assert.equal(result.code, 1, 'a certificate expires within 21 days: exit 1');
    assert.match(out, /^etcd http:\/\/127\.0\.0\.1:\d+ {2}revision \d+ {2}\(the table last changed at revision \d+\)/);
    const revision = Number(/revision (\d+)/.exec(out)![1]);
    assert.ok(revision >= current, `etcd revision ${revision} < ${current}`);
    assert.match(out, /ROUTERS \(2\)\n {2}NODE +APPLIED +HEALTHY +UPDATED +SYNC +VERSION +ADDRESSES\n {2}edge-a +\d+ +yes +\d+s ago +in sync +\d+\.\d+\.\d+ +http 127\.0\.0\.1:\d+ admin 127\.0\.0\.1:\d+\n {2}edge-b +\d+ +yes .* https 127\.0\.0\.1:\d+ /);
    assert.match(out, new RegExp(`SERVICES \\(1\\)\\n {2}app {2}2 instances\\n {4}@1 +${backend.address}\\n {4}@2 +127\\.0\\.0\\.1:1 +weight 5\\n`));
    assert.match(out, /ROUTES \(1\)\n.*\n {2}app-www +www\.example\.com +\/ +app +https-redirect\n/);
    assert.match(out, /CERTIFICATES expiring within 21 days \(1 of 2\)\n {2}soon +soon\.example\.com +\d{4}-\d{2}-\d{2} \([45] days\)\n/);
    assert.doesNotMatch(out, /later\.example\.com/);
  });

  it('prints the same as one JSON object with --json', async () => {
    const { code, stdout } = await tugStatus('--etcd', etcd.endpoint, '--json');
    assert.equal(code, 1);
    const status = JSON.parse(stdout) as Record<string, any>;
    assert.deepEqual(status.routers.map((r: any) => [r.node, r.sync, r.healthy]), [['edge-a', 'in sync', true], ['edge-b', 'in sync', true]]);
    for (const [i, router] of routers.entries()) {
      const record = status.routers[i];
      assert.equal(record.addresses.admin, `127.0.0.1:${router.adminPort}`);
      assert.equal(record.revision, (await router.health()).body.etcd.revision);
      assert.ok(record.revision >= status.tableRevision);
    }
    assert.deepEqual(status.services, [{ name: 'app', instances: [
      { instance: '@1', host: '127.0.0.1', port: backend.port, weight: 1 },
      { instance: '@2', host: '127.0.0.1', port: 1, weight: 5 },
    ] }]);
    assert.deepEqual(status.routes.map((r: any) => [r.name, r.service, r.hosts]), [['app-www', 'app', ['www.example.com']]]);
    assert.deepEqual(status.certificates.map((c: any) => [c.name, c.expiring]), [['soon', true], ['later', false]]);
  });

  it('flags a router that stopped applying changes as stale, and clears it when the router catches up', async () => {
    // Under a prefix of their own, with no certificates: exit 0 means nothing to look at.
    const prefixed = await Promise.all([
      startRouter({ etcd: etcd.endpoint, args: ['--node-name', 'live', '--etcd-prefix', '/other'] }),
      startRouter({ etcd: etcd.endpoint, args: ['--node-name', 'frozen', '--etcd-prefix', '/other'] }),
    ]);
    routers.push(...prefixed);
    const args = ['--etcd', etcd.endpoint, '--etcd-prefix', '/other'];
    await waitFor(async () => (await tugStatus(...args)).code === 0, { timeout: 20_000, interval: 200, what: 'both routers in sync under /other' });
    // SIGSTOP the primary: its workers keep serving, but it applies and registers nothing more.
    prefixed[1].child.kill('SIGSTOP');
    await etcd.put('/other/services/late/@1', backend.address);
    const stale = await waitFor(async () => {
      const run = await tugStatus(...args);
      return /frozen .*STALE/.test(run.stdout) ? run : null;
    }, { timeout: 12_000, interval: 100, what: 'the frozen router flagged stale' });
    assert.equal(stale.code, 1);
    assert.match(stale.stdout, /live +\d+ +yes +\d+s ago +in sync/);
    prefixed[1].child.kill('SIGCONT');
    const caughtUp = await waitFor(async () => {
      const run = await tugStatus(...args);
      return run.code === 0 ? run : null;
    }, { timeout: 20_000, interval: 200, what: 'the router in sync again' });
    assert.match(caughtUp.stdout, /frozen +\d+ +yes +\d+s ago +in sync/);
  });

  it('exits 3 with one line when etcd does not answer', async () => {
    const { code, stdout, stderr } = await tugStatus('--etcd', `http://127.0.0.1:${await freePort()}`);
    assert.equal(code, 3);
    assert.equal(stdout, '');
    assert.match(stderr, /^tug status: etcd http:\/\/127\.0\.0\.1:\d+ did not answer: .+\n$/);
  });
});
