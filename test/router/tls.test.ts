// TLS at the edge: certificates from etcd and from --cert/--key files, chosen
// per handshake by SNI (exact, wildcard, default), changed live without a
// restart and without touching established connections; broken ones refused.
// Checked with Debian's curl (HTTP/2 over TLS) and raw handshakes.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { connect, type TLSSocket } from 'node:tls';
import { startBackend, type TestBackend } from '../helpers/backend.ts';
import { TestCertificates, type IssuedCertificate } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { scrape, valueOf } from '../helpers/metrics.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { curl, handshake } from '../helpers/tls-client.ts';
import { waitFor } from '../helpers/wait.ts';

describe('TLS with SNI certificates', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let certs: TestCertificates;
  let alpha: TestBackend;
  let beta: TestBackend;
  let fallback: IssuedCertificate;
  let alphaCert: IssuedCertificate;
  let betaCert: IssuedCertificate;
  let wildCert: IssuedCertificate;

  before(async () => {
    certs = await TestCertificates.create();
    [fallback, alphaCert, betaCert, wildCert] = await Promise.all([
      certs.issue('tug default', ['default.invalid'], { ips: ['127.0.0.1'] }),
      certs.issue('alpha.example.com', ['alpha.example.com']),
      certs.issue('beta.example.com', ['beta.example.com', 'www.beta.example.com']),
      certs.issue('wild.example.com', ['*.wild.example.com']),
    ]);
    etcd = await EtcdServer.start();
    [alpha, beta] = await Promise.all([startBackend('alpha'), startBackend('beta')]);
    await etcd.put('/services/alpha/@1', alpha.address);
    await etcd.put('/services/beta/@1', beta.address);
    await etcd.put('/routes/alpha', JSON.stringify({ hosts: ['alpha.example.com', '*.wild.example.com', 'gamma.example.com'], service: 'alpha' }));
    await etcd.put('/routes/beta', JSON.stringify({ hosts: ['beta.example.com'], service: 'beta' }));
    await etcd.put('/tls/alpha', alphaCert.etcdValue);
    await etcd.put('/tls/beta', betaCert.etcdValue);
    await etcd.put('/tls/wild', wildCert.etcdValue);
    router = await startRouter({ etcd: etcd.endpoint, https: true, workers: 2, args: ['--cert', fallback.certFile, '--key', fallback.keyFile] });
  });

  after(async () => {
    await router?.stop();
    await Promise.all([alpha?.close(), beta?.close()]);
    await etcd?.close();
    await certs?.close();
  });

  it('serves each hostname its own certificate and a routed answer to curl --http2 with --resolve', async () => {
    const a = await curl(router.httpsPort, 'alpha.example.com', '/', certs.caFile, ['--http2']);
    assert.equal(a.status, 200);
    assert.equal(a.body, 'alpha\n');
    assert.equal(a.httpVersion, '2');
    assert.match(a.verbose, /subject: CN=alpha\.example\.com/);
    const b = await curl(router.httpsPort, 'beta.example.com', '/', certs.caFile, ['--http2']);
    assert.equal(b.status, 200);
    assert.equal(b.body, 'beta\n');
    assert.equal(b.httpVersion, '2');
    assert.match(b.verbose, /subject: CN=beta\.example\.com/);
  });

  it('selects exact names, then a one-label wildcard, then the default certificate', async () => {
    assert.equal((await handshake(router.httpsPort, 'alpha.example.com')).commonName, 'alpha.example.com');
    assert.equal((await handshake(router.httpsPort, 'WWW.Beta.Example.com')).commonName, 'beta.example.com', 'case-insensitive, any SAN');
    assert.equal((await handshake(router.httpsPort, 'x.wild.example.com')).commonName, 'wild.example.com');
    assert.equal((await handshake(router.httpsPort, 'a.b.wild.example.com')).commonName, 'tug default', 'a wildcard covers one label');
    assert.equal((await handshake(router.httpsPort, 'unknown.example.net')).commonName, 'tug default');
    assert.equal((await handshake(router.httpsPort, null)).commonName, 'tug default', 'no SNI');
    const wild = await curl(router.httpsPort, 'x.wild.example.com', '/', certs.caFile);
    assert.equal(wild.body, 'alpha\n');
  });

  it('speaks TLS 1.3 and 1.2 with forward-secret AEAD ciphers only', async () => {
    assert.equal((await handshake(router.httpsPort, 'alpha.example.com')).protocol, 'TLSv1.3');
    assert.equal((await handshake(router.httpsPort, 'alpha.example.com', { maxVersion: 'TLSv1.2' })).protocol, 'TLSv1.2');
    await assert.rejects(handshake(router.httpsPort, 'alpha.example.com', { minVersion: 'TLSv1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' }));
    await assert.rejects(handshake(router.httpsPort, 'alpha.example.com', { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384' }), 'CBC suites are refused');
    const cipher = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: router.httpsPort, servername: 'alpha.example.com', rejectUnauthorized: false, maxVersion: 'TLSv1.2' }, () => {
        resolve(socket.getCipher().name);
        socket.end();
      });
      socket.on('error', reject);
    });
    assert.match(cipher, /^ECDHE-(ECDSA|RSA)-(AES\d+-GCM-SHA\d+|CHACHA20-POLY1305)$/);
    const { samples } = await scrape(router.adminPort);
    assert.ok((valueOf(samples, 'tug_tls_handshake_errors_total') ?? 0) >= 2, 'refused handshakes are counted');
  });

  it('lists the certificates on /routes with their names, hosts and expiry, never their keys', async () => {
    const routes = await router.routes();
    const alphaEntry = routes.certificates.find((c: { name: string }) => c.name === 'alpha');
    assert.deepEqual(alphaEntry?.hosts, ['alpha.example.com']);
    assert.equal(alphaEntry?.source, 'etcd');
    assert.ok(routes.certificates.some((c: { name: string; source: string }) => c.name === fallback.certFile && c.source === 'file'));
    assert.doesNotMatch(JSON.stringify(routes), /PRIVATE KEY|BEGIN CERTIFICATE/);
  });

  it('serves a certificate put in etcd to new handshakes within 1 s, while an established connection stays open', async () => {
    // An HTTP/1.1 keep-alive connection for gamma, opened while gamma has no certificate (default served).
    const open = await openKeepAlive(router.httpsPort, 'gamma.example.com');
    try {
      assert.equal(open.socket.getPeerCertificate().subject.CN, 'tug default');
      assert.equal(await open.request(), 200);
      const gamma = await certs.issue('gamma.example.com', ['gamma.example.com']);
      const putAt = Date.now();
      await etcd.put('/tls/gamma', gamma.etcdValue);
      await waitFor(async () => (await handshake(router.httpsPort, 'gamma.example.com')).commonName === 'gamma.example.com', { timeout: 3000, interval: 20, what: 'gamma certificate served' });
      const servedIn = Date.now() - putAt;
      assert.ok(servedIn <= 1000, `served after ${servedIn} ms`);
      // A new curl, verifying the chain against the CA, gets it too.
      assert.match((await curl(router.httpsPort, 'gamma.example.com', '/', certs.caFile)).verbose, /subject: CN=gamma\.example\.com/);
      // The connection opened before is untouched: same TLS session, still answering.
      assert.equal(open.socket.destroyed, false);
      assert.equal(await open.request(), 200);
      assert.equal(open.socket.getPeerCertificate().subject.CN, 'tug default');

      await etcd.del('/tls/gamma');
      await waitFor(async () => (await handshake(router.httpsPort, 'gamma.example.com')).commonName === 'tug default', { timeout: 3000, interval: 20, what: 'gamma certificate removed' });
      assert.equal(await open.request(), 200);
    } finally {
      open.socket.destroy();
    }
  });

  it('refuses a broken certificate or key with a warning naming the key, and the previous one keeps serving', async () => {
    const before = await handshake(router.httpsPort, 'alpha.example.com');
    const otherKey = JSON.stringify({ cert: alphaCert.cert, key: betaCert.key });
    await etcd.put('/tls/alpha', otherKey);
    await waitFor(() => router.logs().some((l) => l.key === '/tls/alpha' && l.level === 'warn' && /does not match/.test(String(l.err))), { what: 'mismatch warning naming /tls/alpha' });
    await etcd.put('/tls/alpha', JSON.stringify({ cert: '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n', key: alphaCert.key }));
    await etcd.put('/tls/alpha', 'not json');
    await etcd.put('/tls/broken-new', JSON.stringify({ cert: alphaCert.cert }));
    await waitFor(() => router.logs().some((l) => l.key === '/tls/broken-new' && l.level === 'warn'), { what: 'warning naming /tls/broken-new' });
    const warnings = router.logs().filter((l) => l.key === '/tls/alpha' && l.level === 'warn');
    assert.ok(warnings.length >= 3, `three warnings for /tls/alpha, got ${warnings.length}`);
    assert.ok(warnings.every((w) => String(w.err).startsWith('/tls/alpha: ')), 'each names the key');
    const after = await handshake(router.httpsPort, 'alpha.example.com');
    assert.equal(after.fingerprint, before.fingerprint, 'the previous certificate still serves');
    assert.equal((await curl(router.httpsPort, 'alpha.example.com', '/', certs.caFile)).body, 'alpha\n');
    assert.equal((await router.health()).status, 200);
    // A good value afterwards is taken as usual.
    await etcd.put('/tls/alpha', alphaCert.etcdValue);
  });

  it('prefers the certificate that expires last when two cover a name (a renewal under a new key)', async () => {
    const renewed = await certs.issue('alpha.example.com', ['alpha.example.com'], { days: 3 });
    const old = await handshake(router.httpsPort, 'alpha.example.com');
    await etcd.put('/tls/alpha-renewed', renewed.etcdValue);
    await waitFor(async () => (await handshake(router.httpsPort, 'alpha.example.com')).fingerprint !== old.fingerprint, { timeout: 3000, interval: 20, what: 'renewed certificate served' });
    await etcd.del('/tls/alpha-renewed');
    await waitFor(async () => (await handshake(router.httpsPort, 'alpha.example.com')).fingerprint === old.fingerprint, { timeout: 3000, interval: 20, what: 'previous certificate back' });
  });

  it('refuses to start with a --key that does not match its --cert, naming the files (exit 2)', () => {
    const result = spawnSync(process.execPath, [
      new URL('../../bin/tug.ts', import.meta.url).pathname, 'router', '--http', '127.0.0.1:0', '--https', '127.0.0.1:0',
      '--etcd', etcd.endpoint, '--cert', alphaCert.certFile, '--key', betaCert.keyFile,
    ], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(result.status, 2);
    assert.match(result.stderr, /--cert .*--key .*does not match the certificate/);
  });
});

/** A TLS connection with HTTP/1.1 keep-alive, for sending requests one after another on the same connection. */
function openKeepAlive(port: number, servername: string): Promise<{ socket: TLSSocket; request(): Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      resolve({
        socket,
        request: () => new Promise<number>((done, fail) => {
          let text = '';
          const onData = (chunk: Buffer) => {
            text += chunk.toString('latin1');
            const end = text.indexOf('\r\n\r\n');
            const length = /content-length: (\d+)/i.exec(text);
            if (end >= 0 && length && text.length >= end + 4 + Number(length[1])) {
              socket.off('data', onData);
              done(Number(text.slice(9, 12)));
            }
          };
          socket.on('data', onData);
          socket.once('error', fail);
          socket.write(`GET / HTTP/1.1\r\nHost: ${servername}\r\n\r\n`);
        }),
      });
    });
    socket.once('error', reject);
  });
}
