// ACME TLS-ALPN-01 (RFC 8737) for the whole cluster: with --acme-challenge
// tls-alpn-01 the ordering router publishes the validation certificate in etcd
// (/acme/alpn/<host>) and every router serves it on its HTTPS listener to a
// handshake that offers only `acme-tls/1`; normal clients of the name keep
// getting the name's normal certificate, during the validation and after.
//
// pebble validates TLS-ALPN-01 for real on one port: a TCP proxy the test
// controls, which sends each validation to the router that did NOT order. Its
// HTTP-01 port is one nobody listens on: only TLS-ALPN-01 can succeed.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import acme from 'acme-client';
import { connect } from 'node:tls';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { Pebble } from '../helpers/pebble.ts';
import { freePort } from '../helpers/ports.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { TcpProxy } from '../helpers/tcp-proxy.ts';
import { TUG } from '../helpers/tug-process.ts';
import { waitFor } from '../helpers/wait.ts';

interface Handshake {
  readonly fingerprint: string;
  readonly alpn: string | false | null;
  readonly version: string | null;
  /** Verified against the CAs given. */
  readonly authorized: boolean;
}

/** One TLS handshake with SNI `host` offering `alpn`; rejects on a refused handshake (an alert). */
function handshake(port: number, host: string, alpn: string[] | null, options: { ca?: string[]; maxVersion?: 'TLSv1.2' | 'TLSv1.3' } = {}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1', port, servername: host, rejectUnauthorized: false,
      ...(alpn === null ? {} : { ALPNProtocols: alpn }),
      ...(options.ca === undefined ? {} : { ca: options.ca }),
      ...(options.maxVersion === undefined ? {} : { maxVersion: options.maxVersion }),
    }, () => {
      resolve({ fingerprint: socket.getPeerCertificate().fingerprint256, alpn: socket.alpnProtocol, version: socket.getProtocol(), authorized: socket.authorized });
      socket.end();
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}

function fingerprintOf(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

/** The pid in a lock holder or state's "by" ("<node>:<pid>:<nonce>"). */
function pidOf(holder: string): number {
  return Number(holder.split(':')[1]);
}

describe('ACME TLS-ALPN-01 for the whole cluster', () => {
  let etcd: EtcdServer;
  let backend: TestBackend;
  let proxy: TcpProxy;
  let pebble: Pebble;
  let certificates: TestCertificates;
  let testCa: string;
  const routers: RouterProcess[] = [];
  /** What the test saw on the answering router while pebble was validating (the first validation connection). */
  let duringValidation: Promise<{ normal: Handshake[]; validation: Handshake; alpnValue: string; tls12: string }> | null = null;

  before(async () => {
    etcd = await EtcdServer.start();
    backend = await startBackend('app');
    await etcd.put('/services/app/@1', backend.address);
    certificates = await TestCertificates.create();
    testCa = await readFile(certificates.caFile, 'utf8');
    proxy = await TcpProxy.start(async () => {
      const host = 'alpn.acme.test';
      const pid = pidOf(await etcd.etcdctl('get', '--print-value-only', `/acme/locks/${host}`));
      const answerer = routers.find((r) => r.child.pid !== pid)!;
      // pebble is connecting: the validation is pending, its certificate is in etcd. Look at the
      // answering router now, before the validation reaches it.
      duringValidation ??= (async () => {
        const alpnValue = await etcd.etcdctl('get', '--print-value-only', `/acme/alpn/${host}`);
        const validation = await waitFor(() => handshake(answerer.httpsPort, host, ['acme-tls/1']).catch(() => null), { what: 'the validation certificate on the answering router' });
        const normal = [
          await handshake(answerer.httpsPort, host, ['h2', 'http/1.1'], { ca: [testCa] }),
          await handshake(answerer.httpsPort, host, ['http/1.1'], { ca: [testCa] }),
          await handshake(answerer.httpsPort, host, null, { ca: [testCa] }),
          await handshake(answerer.httpsPort, host, ['h2', 'acme-tls/1'], { ca: [testCa] }),
          await handshake(answerer.httpsPort, host, ['h2'], { ca: [testCa], maxVersion: 'TLSv1.2' }),
        ];
        const tls12 = await handshake(answerer.httpsPort, host, ['acme-tls/1'], { maxVersion: 'TLSv1.2' }).then(() => 'answered', (err: Error) => err.message);
        return { normal, validation, alpnValue, tls12 };
      })();
      await duringValidation.catch(() => {});
      return answerer.httpsPort;
    });
    pebble = await Pebble.start({ httpPort: await freePort(), tlsPort: proxy.port });
    for (let i = 0; i < 2; i++) {
      routers.push(await startRouter({ etcd: etcd.endpoint, https: true, args: ['--acme-directory', pebble.directory, '--acme-ca-file', pebble.caFile, '--acme-lock-ttl', '2s', '--acme-retry', '1s', '--acme-challenge', 'tls-alpn-01'] }));
    }
  });

  after(async () => {
    await Promise.all(routers.map((r) => r.stop()));
    await proxy?.close();
    await pebble?.close();
    await certificates?.close();
    await backend?.close();
    await etcd?.close();
  });

  it('gets a certificate through TLS-ALPN-01 answered by a router that did not order, normal clients served the normal certificate throughout', async () => {
    const host = 'alpn.acme.test';
    // The name's certificate before ACME: what normal clients must see during the validation.
    const manual = await certificates.issue(host, [host]);
    await etcd.put(`/tls/manual-${host}`, manual.etcdValue);
    for (const router of routers) {
      await waitFor(async () => (await handshake(router.httpsPort, host, ['h2'], { ca: [testCa] }).catch(() => null))?.authorized === true, { what: 'the manual certificate' });
    }
    await etcd.put('/routes/alpn', JSON.stringify({ hosts: [host], service: 'app', acme: true }));
    const root = await pebble.root();
    for (const router of routers) {
      await waitFor(async () => {
        const served = await handshake(router.httpsPort, host, ['h2'], { ca: [root] }).catch(() => null);
        return served?.authorized === true;
      }, { timeout: 30_000, interval: 200, what: `a certificate from pebble for ${host} on port ${router.httpsPort}` })
        .catch((err: Error) => { throw new Error(`${err.message}\n${routers.map((r) => r.output.split('\n').filter((l) => l.includes('acme') || l.includes('ACME')).join('\n')).join('\n---\n')}\n${pebble.log.slice(-3000)}`); });
    }

    // During the validation: the validation certificate only for acme-tls/1 alone over TLS 1.3.
    assert.ok(duringValidation !== null, 'pebble connected to the TLS-ALPN-01 port');
    const seen = await duringValidation;
    const published = JSON.parse(seen.alpnValue) as { cert: string; key: string };
    assert.equal(seen.validation.alpn, 'acme-tls/1');
    assert.equal(seen.validation.version, 'TLSv1.3');
    assert.equal(seen.validation.fingerprint, fingerprintOf(published.cert), 'the validation certificate from etcd');
    const validationCert = new X509Certificate(published.cert);
    assert.equal(validationCert.subjectAltName, `DNS:${host}`);
    for (const normal of seen.normal) {
      assert.equal(normal.fingerprint, fingerprintOf(manual.cert), `a normal client (ALPN ${normal.alpn}, ${normal.version}) gets the name's certificate`);
      assert.equal(normal.authorized, true);
      assert.notEqual(normal.alpn, 'acme-tls/1');
    }
    assert.match(seen.tls12, /no application protocol/, 'acme-tls/1 over TLS 1.2 is refused rather than answered with the wrong certificate');

    // The router that did not order answered; the order was one, and left nothing behind.
    const state = JSON.parse(await etcd.etcdctl('get', '--print-value-only', `/acme/state/${host}`)) as Record<string, any>;
    assert.equal(state.status, 'valid');
    const orderer = routers.find((r) => r.child.pid === pidOf(state.by))!;
    const answerer = routers.find((r) => r !== orderer)!;
    assert.ok(orderer, `state names a router of the test: ${state.by}`);
    assert.ok(answerer.logs().some((l) => l.acme === 'tls-alpn-01' && l.host === host && l.msg === 'ACME challenge answered'), 'the other router answered the validation');
    assert.ok(!orderer.logs().some((l) => l.acme === 'tls-alpn-01'), 'the ordering router answered none');
    assert.equal(orderer.logs().filter((l) => l.msg === 'ACME certificate issued' && l.host === host).length, 1);
    assert.equal(answerer.logs().filter((l) => l.msg === 'ACME order started').length, 0, 'one order in the cluster');
    assert.equal(await etcd.etcdctl('get', '--prefix', '--keys-only', '/acme/alpn/'), '', 'the validation certificate is removed from etcd');
    assert.equal(await etcd.etcdctl('get', '--prefix', '--keys-only', '/acme/challenges/'), '');

    // After: normal clients get the issued certificate, and acme-tls/1 is no longer answered.
    for (const router of routers) {
      const after = await handshake(router.httpsPort, host, ['h2', 'http/1.1'], { ca: [root] });
      assert.equal(after.authorized, true);
      assert.equal(after.alpn, 'h2');
      await waitFor(async () => (await handshake(router.httpsPort, host, ['acme-tls/1']).then(() => 'answered', (err: Error) => err.message)).includes('no application protocol'), { what: 'acme-tls/1 refused once the validation is over' });
    }
  });

  it('refuses a /acme/alpn/ value that is not a validation certificate for its host, with a warning naming the key', async () => {
    const other = await certificates.issue('other.acme.test', ['other.acme.test']);
    await etcd.put('/acme/alpn/wrong.acme.test', other.etcdValue);
    await etcd.put('/acme/alpn/garbage.acme.test', 'not json');
    for (const router of routers) {
      await waitFor(() => router.logs().some((l) => String(l.err ?? '').startsWith('/acme/alpn/wrong.acme.test:') && String(l.err).includes('must name exactly wrong.acme.test')), { what: 'the warning about a certificate for another name' });
      await waitFor(() => router.logs().some((l) => String(l.err ?? '').startsWith('/acme/alpn/garbage.acme.test:')), { what: 'the warning about a value that is not JSON' });
      for (const host of ['wrong.acme.test', 'garbage.acme.test']) {
        const refused = await handshake(router.httpsPort, host, ['acme-tls/1']).then(() => 'answered', (err: Error) => err.message);
        assert.match(refused, /no application protocol/);
      }
      assert.equal(router.child.exitCode, null);
    }
    await etcd.del('/acme/alpn/wrong.acme.test');
    await etcd.del('/acme/alpn/garbage.acme.test');
  });
});

describe('TLS-ALPN-01 only on routers started with --acme-challenge tls-alpn-01', () => {
  let etcd: EtcdServer;
  let flagged: RouterProcess;
  let plain: RouterProcess;

  before(async () => {
    etcd = await EtcdServer.start();
    [flagged, plain] = await Promise.all([
      startRouter({ etcd: etcd.endpoint, https: true, args: ['--acme-challenge', 'tls-alpn-01'] }),
      startRouter({ etcd: etcd.endpoint, https: true }),
    ]);
  });

  after(async () => {
    await Promise.all([flagged?.stop(), plain?.stop()]);
    await etcd?.close();
  });

  it('serves a validation certificate from etcd to acme-tls/1 on a flagged router only; a default router keeps refusing acme-tls/1', async () => {
    const host = 'hand.acme.test';
    const keyAuthorization = 'Tok3n_Tok3n-Tok3n_Tok3n.Thumbprint_Thumbprint-Thumbprint';
    const [key, cert] = await acme.crypto.createAlpnCertificate({ identifier: { type: 'dns', value: host } } as acme.Authorization, keyAuthorization, await acme.crypto.createPrivateEcdsaKey('P-256'));
    await etcd.put(`/acme/alpn/${host}`, JSON.stringify({ cert: cert.toString(), key: key.toString() }));
    const answered = await waitFor(() => handshake(flagged.httpsPort, host, ['acme-tls/1']).catch(() => null), { what: 'the validation certificate on the flagged router' });
    assert.equal(answered.alpn, 'acme-tls/1');
    assert.equal(answered.fingerprint, fingerprintOf(cert.toString()));
    assert.ok(acme.crypto.isAlpnCertificateAuthorizationValid(cert, keyAuthorization), 'acme-client finds the key authorization in it');
    await waitFor(() => flagged.logs().some((l) => l.acme === 'tls-alpn-01' && l.host === host), { what: 'the log line of the answer' });
    // The name's other clients and other names are not affected; the default router never answers.
    assert.equal((await handshake(flagged.httpsPort, host, ['h2', 'http/1.1']).then((h) => h.alpn, (err: Error) => err.message)) === 'acme-tls/1', false);
    assert.match(await handshake(flagged.httpsPort, 'other.acme.test', ['acme-tls/1']).then(() => 'answered', (err: Error) => err.message), /no application protocol/);
    assert.match(await handshake(plain.httpsPort, host, ['acme-tls/1']).then(() => 'answered', (err: Error) => err.message), /no application protocol/);
    assert.ok(!plain.logs().some((l) => l.acme === 'tls-alpn-01'));
    await etcd.del(`/acme/alpn/${host}`);
    await waitFor(async () => (await handshake(flagged.httpsPort, host, ['acme-tls/1']).then(() => 'answered', (err: Error) => err.message)).includes('no application protocol'), { what: 'acme-tls/1 refused once the key is deleted' });
  });
});

describe('--acme-challenge', () => {
  it('refuses an unknown method, and tls-alpn-01 without the HTTPS listener, at start-up with exit code 2', () => {
    for (const [args, message] of [
      [['--acme-challenge', 'dns-01'], /--acme-challenge: "dns-01" is not one of http-01, tls-alpn-01/],
      [['--acme-challenge', 'tls-alpn-01', '--https', 'off'], /--acme-challenge tls-alpn-01: needs the HTTPS listener/],
    ] as const) {
      const result = spawnSync(process.execPath, [TUG, 'router', '--etcd', 'http://127.0.0.1:1', ...args], { encoding: 'utf8', timeout: 10_000 });
      assert.equal(result.status, 2, result.stderr);
      assert.match(result.stderr, message);
    }
  });
});
