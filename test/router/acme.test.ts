// Automatic HTTPS for the cluster: routes with "acme": true get certificates
// from a real ACME server (Debian's pebble, validating HTTP-01 for real through
// its mock DNS), ordered once per name by whichever router holds the name's
// lock in etcd, answered by any router, served by every router, renewed
// without a failed handshake, and kept serving while the directory fails.
//
// pebble validates on one port: a TCP proxy the test controls, which sends each
// validation to the router that did NOT order (the lock's holder names its pid).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { connect } from 'node:tls';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { get } from '../helpers/http.ts';
import { promtool, scrape, valueOf } from '../helpers/metrics.ts';
import { Pebble } from '../helpers/pebble.ts';
import { freePort } from '../helpers/ports.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { TUG } from '../helpers/tug-process.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

interface Served {
  readonly fingerprint: string;
  readonly authorized: boolean;
  readonly error: string | null;
}

/** One TLS handshake with SNI `host`, verified against `ca` (pebble's root). */
function handshakeWith(port: number, host: string, ca: string): Promise<Served> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: host, ca, rejectUnauthorized: false }, () => {
      resolve({ fingerprint: socket.getPeerCertificate().fingerprint256, authorized: socket.authorized, error: socket.authorizationError?.toString() ?? null });
      socket.end();
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}

function acmeArgs(pebble: Pebble, ...more: string[]): string[] {
  return ['--acme-directory', pebble.directory, '--acme-ca-file', pebble.caFile, '--acme-lock-ttl', '2s', '--acme-retry', '1s', ...more];
}

/** The pid in a lock holder or state's "by" ("<node>:<pid>:<nonce>"). */
function pidOf(holder: string): number {
  return Number(holder.split(':')[1]);
}

function logsOf(router: RouterProcess, msg: string, host: string): Record<string, unknown>[] {
  return router.logs().filter((l) => l.msg === msg && l.host === host);
}

describe('ACME certificates for the whole cluster', () => {
  let etcd: EtcdServer;
  let backend: TestBackend;
  let proxy: TcpProxy;
  let pebble: Pebble;
  let root: string;
  const routers: RouterProcess[] = [];
  /** Picks the router pebble's next validation reaches (set per test). */
  let validationTarget: () => Promise<number>;

  async function lockHolder(host: string): Promise<string> {
    return etcd.etcdctl('get', '--print-value-only', `/acme/locks/${host}`);
  }

  /** The live router other than the lock's holder; the holder when it is the only one. */
  async function notTheOrderer(host: string): Promise<number> {
    const pid = pidOf(await lockHolder(host));
    const live = routers.filter((r) => r.child.exitCode === null && r.child.signalCode === null);
    return (live.find((r) => r.child.pid !== pid) ?? live[0]).httpPort;
  }

  before(async () => {
    etcd = await EtcdServer.start();
    backend = await startBackend('app');
    await etcd.put('/services/app/@1', backend.address);
    proxy = await TcpProxy.start(() => validationTarget());
    pebble = await Pebble.start({ httpPort: proxy.port });
    root = await pebble.root();
    for (let i = 0; i < 2; i++) routers.push(await startRouter({ etcd: etcd.endpoint, https: true, args: acmeArgs(pebble) }));
  });

  after(async () => {
    await Promise.all(routers.map((r) => r.stop()));
    await proxy?.close();
    await pebble?.close();
    await backend?.close();
    await etcd?.close();
  });

  it('gets a certificate chaining to the ACME root, served by every router, the challenge answered by a router that did not order', async () => {
    const host = 'www.acme.test';
    validationTarget = () => notTheOrderer(host);
    // httpsRedirect: the validation still gets its answer, not a 308.
    await etcd.put('/routes/www', JSON.stringify({ hosts: [host], service: 'app', acme: true, httpsRedirect: true }));
    for (const router of routers) {
      const served = await waitFor(async () => {
        const s = await handshakeWith(router.httpsPort, host, root).catch(() => null);
        return s?.authorized ? s : null;
      }, { timeout: 30_000, interval: 200, what: `a trusted certificate for ${host} on port ${router.httpsPort}` });
      assert.equal(served.error, null);
    }
    const state = JSON.parse(await etcd.etcdctl('get', '--print-value-only', `/acme/state/${host}`)) as Record<string, any>;
    assert.equal(state.status, 'valid');
    const orderer = routers.find((r) => r.child.pid === pidOf(state.by))!;
    const answerer = routers.find((r) => r !== orderer)!;
    assert.ok(orderer, `state names a router of the test: ${state.by}`);
    assert.equal(logsOf(orderer, 'ACME certificate issued', host).length, 1);
    assert.ok(answerer.logs().some((l) => l.acme === 'http-01' && l.status === 200 && l.host === host), 'the other router answered the validation');
    assert.ok(!orderer.logs().some((l) => l.acme === 'http-01'), 'the ordering router answered none');
    assert.equal(answerer.logs().filter((l) => l.msg === 'ACME order started').length, 0, 'one order in the cluster');
    // Every router shows the state, in /routes and in /metrics (which promtool accepts).
    for (const router of routers) {
      const acme = (await router.routes()).acme as Record<string, any>;
      assert.equal(acme.names[host].status, 'valid');
      assert.equal(Date.parse(acme.names[host].notAfter) > Date.now(), true);
      const { text, samples } = await scrape(router.adminPort);
      assert.equal(valueOf(samples, 'tug_acme_certificate_state', { host, state: 'valid' }), 1);
      assert.equal(valueOf(samples, 'tug_acme_certificate_state', { host, state: 'pending' }), 0);
      const check = await promtool(text);
      assert.equal(check.code, 0, check.output);
    }
    // The certificate is the ordinary /tls/ value every router checks and serves.
    const stored = JSON.parse(await etcd.etcdctl('get', '--print-value-only', `/tls/acme-${host}`)) as { cert: string; key: string };
    assert.match(stored.cert, /BEGIN CERTIFICATE/);
    assert.match(stored.key, /PRIVATE KEY/);
    // The account key is shared in etcd, and no challenge is left behind.
    assert.match(await etcd.etcdctl('get', '--print-value-only', '/acme/account'), /PRIVATE KEY/);
    assert.equal(await etcd.etcdctl('get', '--prefix', '--keys-only', '/acme/challenges/'), '');
  });

  it('answers a cluster challenge before any route or redirect, and leaves unknown tokens to the routes', async () => {
    const token = 'Tok3n_Tok3n-Tok3n_Tok3n';
    const keyAuthorization = `${token}.Thumbprint_Thumbprint-Thumbprint`;
    await etcd.put('/routes/redirected', JSON.stringify({ hosts: ['redirected.acme.test'], service: 'app', httpsRedirect: true }));
    await etcd.put(`/acme/challenges/${token}`, keyAuthorization);
    for (const router of routers) {
      const answer = await waitFor(async () => {
        const res = await get(router.httpPort, 'redirected.acme.test', `/.well-known/acme-challenge/${token}`);
        return res.status === 200 ? res : null;
      }, { what: 'the challenge answer' });
      assert.equal(answer.body, keyAuthorization);
      assert.match(String(answer.headers['content-type']), /^text\/plain/);
      const unknown = await get(router.httpPort, 'redirected.acme.test', '/.well-known/acme-challenge/UnknownUnknownUnknown');
      assert.equal(unknown.status, 308, 'an unknown token goes on to the route (here its redirect)');
    }
    // A value that is not this token's key authorization is refused with a warning naming the key.
    await etcd.put('/acme/challenges/OtherOtherOtherOther', 'not-a-key-authorization');
    await waitFor(() => routers[0].logs().some((l) => String(l.err ?? '').startsWith('/acme/challenges/OtherOtherOtherOther:')), { what: 'the warning' });
    assert.equal((await get(routers[0].httpPort, 'nowhere.acme.test', '/.well-known/acme-challenge/OtherOtherOtherOther')).status, 404);
    await etcd.del(`/acme/challenges/${token}`);
    await etcd.del('/acme/challenges/OtherOtherOtherOther');
  });

  it('warns about a wildcard host with "acme": true and orders only the exact hosts', async () => {
    await etcd.put('/routes/wild', JSON.stringify({ hosts: ['*.wild.acme.test'], service: 'app', acme: true }));
    for (const router of routers) {
      await waitFor(() => router.logs().some((l) => l.key === '/routes/wild' && l.host === '*.wild.acme.test' && String(l.msg).includes('wildcard')), { what: 'the wildcard warning' });
    }
    assert.equal(await etcd.etcdctl('get', '--prefix', '--keys-only', '/acme/state/*.wild.acme.test'), '');
    await etcd.del('/routes/wild');
  });

  it('lets another router finish an order when the ordering router is killed mid-order', async () => {
    const host = 'kill.acme.test';
    let killed: RouterProcess | null = null;
    validationTarget = async () => {
      // pebble is validating: the holder is waiting for it, mid-order. Kill it, then let the
      // validation reach the survivor (which has the challenge from etcd).
      if (killed === null) {
        const pid = pidOf(await lockHolder(host));
        killed = routers.find((r) => r.child.pid === pid)!;
        killed.child.kill('SIGKILL');
        await killed.exited;
      }
      return notTheOrderer(host);
    };
    await etcd.put('/routes/kill', JSON.stringify({ hosts: [host], service: 'app', acme: true }));
    const survivor = await waitFor(() => killed === null ? null : routers.find((r) => r !== killed), { timeout: 30_000, what: 'the ordering router to be killed' })
      .catch((err: Error) => { throw new Error(`${err.message}\n${routers.map((r) => r.output.split('\n').filter((l) => l.includes('acme')).join('\n')).join('\n---\n')}`); });
    const served = await waitFor(async () => {
      const s = await handshakeWith(survivor.httpsPort, host, root).catch(() => null);
      return s?.authorized ? s : null;
    }, { timeout: 40_000, interval: 200, what: 'the survivor to finish the order' });
    assert.equal(served.error, null);
    assert.equal(logsOf(survivor, 'ACME certificate issued', host).length, 1);
    const state = JSON.parse(await etcd.etcdctl('get', '--print-value-only', `/acme/state/${host}`)) as Record<string, any>;
    assert.equal(pidOf(state.by), survivor.child.pid);
    // Bring the cluster back to two routers for the next tests.
    routers.splice(routers.indexOf(killed!), 1, await startRouter({ etcd: etcd.endpoint, https: true, args: acmeArgs(pebble) }));
  });
});

describe('ACME renewal', () => {
  let etcd: EtcdServer;
  let backend: TestBackend;
  let pebble: Pebble;
  let router: RouterProcess;

  before(async () => {
    etcd = await EtcdServer.start();
    backend = await startBackend('app');
    await etcd.put('/services/app/@1', backend.address);
    const httpPort = await freePort();
    // 15 s certificates: due for renewal 10 s after they are issued (two thirds).
    pebble = await Pebble.start({ httpPort, validitySeconds: 15 });
    router = await startRouter({ etcd: etcd.endpoint, https: true, workers: 2, httpPort, args: acmeArgs(pebble) });
  });

  after(async () => {
    await router?.stop();
    await pebble?.close();
    await backend?.close();
    await etcd?.close();
  });

  it('replaces the certificate at two thirds of its lifetime with no failed handshake under load', async () => {
    const host = 'renew.acme.test';
    const root = await pebble.root();
    await etcd.put('/routes/renew', JSON.stringify({ hosts: [host], service: 'app', acme: true }));
    const first = await waitFor(async () => {
      const s = await handshakeWith(router.httpsPort, host, root).catch(() => null);
      return s?.authorized ? s : null;
    }, { timeout: 30_000, interval: 200, what: 'the first certificate' });
    const seen = new Set<string>([first.fingerprint]);
    const failures: string[] = [];
    let handshakes = 0;
    let renewedAt = 0;
    const deadline = Date.now() + 30_000;
    // Three clients, one handshake every 20 ms each, until 2 s past the renewal (bounded in time).
    await Promise.all(Array.from({ length: 3 }, async () => {
      while (Date.now() < deadline && (renewedAt === 0 || Date.now() < renewedAt + 2000)) {
        try {
          const s = await handshakeWith(router.httpsPort, host, root);
          handshakes++;
          if (!s.authorized) failures.push(s.error ?? 'unauthorized');
          if (!seen.has(s.fingerprint)) {
            seen.add(s.fingerprint);
            renewedAt ||= Date.now();
          }
        } catch (err) {
          failures.push((err as Error).message);
        }
        await sleep(20);
      }
    }));
    assert.ok(renewedAt > 0, `renewed within 30 s (${handshakes} handshakes)\n${router.output.split('\n').filter((l) => l.includes('acme')).join('\n')}`);
    assert.deepEqual(failures, []);
    assert.ok(handshakes > 20, `a real load: ${handshakes} handshakes`);
    assert.equal(logsOf(router, 'ACME renewal started', host).length >= 1, true);
    assert.equal(logsOf(router, 'ACME certificate renewed', host).length >= 1, true);
  });
});

describe('ACME with a failing directory', () => {
  let etcd: EtcdServer;
  let certificates: TestCertificates;
  let router: RouterProcess;

  before(async () => {
    etcd = await EtcdServer.start();
    certificates = await TestCertificates.create();
  });

  after(async () => {
    await router?.stop();
    await certificates?.close();
    await etcd?.close();
  });

  it('keeps the current certificate serving and backs off, longer after each failure', async () => {
    const host = 'failing.acme.test';
    // A certificate already in place (valid two days) that --acme-renew-before makes due now.
    const current = await certificates.issue(host, [host]);
    await etcd.put(`/tls/acme-${host}`, current.etcdValue);
    await etcd.put('/routes/failing', JSON.stringify({ hosts: [host], service: 'app', acme: true }));
    const refusing = `https://127.0.0.1:${await freePort()}/directory`;
    router = await startRouter({ etcd: etcd.endpoint, https: true, args: ['--acme-directory', refusing, '--acme-retry', '1s', '--acme-renew-before', '72h'] });
    const ca = current.cert;
    const failed = await waitFor(() => {
      const lines = logsOf(router, 'ACME order failed; the current certificate (if any) keeps serving', host);
      return lines.length >= 4 ? lines : null;
    }, { timeout: 30_000, interval: 100, what: 'four failed orders' });
    const times = failed.map((l) => Date.parse(String(l.time)));
    const gaps = times.slice(1).map((t, i) => t - times[i]);
    // 1 s, 2 s, 4 s (each ±20%), plus up to a second of the schedule's tick.
    assert.ok(gaps[0] >= 700, `first retry after about a second: ${gaps}`);
    assert.ok(gaps[1] > gaps[0] && gaps[2] > gaps[1], `intervals grow: ${gaps}`);
    assert.deepEqual(failed.map((l) => l.failures), [1, 2, 3, 4]);
    // The old certificate still serves, and the state says why it is not renewed.
    const served = await handshakeWith(router.httpsPort, host, await readFile(certificates.caFile, 'utf8'));
    assert.equal(served.authorized, true);
    assert.equal(served.fingerprint.replaceAll(':', ''), fingerprintOf(ca));
    const acme = (await router.routes()).acme as Record<string, any>;
    assert.equal(acme.names[host].status, 'failing');
    assert.match(acme.names[host].lastError, /ECONNREFUSED/);
    assert.ok(Date.parse(acme.names[host].retryAt) > Date.now() - 1000);
    const { samples } = await scrape(router.adminPort);
    assert.equal(valueOf(samples, 'tug_acme_certificate_state', { host, state: 'failing' }), 1);
    assert.ok((valueOf(samples, 'tug_acme_order_failures', { host }) ?? 0) >= 4);
  });
});

describe('ACME flags', () => {
  it('refuses a bad --acme-* value at start-up with one line naming the flag, exit code 2', () => {
    for (const [args, message] of [
      [['--acme-directory', 'http://acme.example/directory'], /--acme-directory: must be an https:\/\/ URL/],
      [['--acme-email', 'not an address'], /--acme-email: "not an address" is not an email address/],
      [['--acme-ca-file', '/nonexistent/ca.pem'], /--acme-ca-file \/nonexistent\/ca.pem: not a readable PEM certificate/],
      [['--acme-lock-ttl', '1s'], /--acme-lock-ttl: at least 2000ms/],
      [['--acme-retry', '7h'], /--acme-retry: at most 6h/],
    ] as const) {
      const result = spawnSync(process.execPath, [TUG, 'router', '--etcd', 'http://127.0.0.1:1', ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, message);
    }
  });
});

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256.replaceAll(':', '');
}
