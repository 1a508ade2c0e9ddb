// TLS session resumption across the router's workers: every worker binds the
// HTTPS port (SO_REUSEPORT), so a client's next connection lands on any of
// them; the session ticket it got from one worker must resume on another.
// The primary hands every worker the same ticket keys; without that, each
// worker encrypts tickets under its own random keys and about half of the
// reconnections below would be full handshakes. And a TLS 1.3 client uses a
// ticket once (RFC 8446 §C.4), as wrk's OpenSSL and browsers do: the client
// below does too, so every resumed connection must bring a fresh ticket.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { TestCertificates, type IssuedCertificate } from '../helpers/certificates.ts';
import { EtcdServer } from '../helpers/etcd.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { handshake } from '../helpers/tls-client.ts';
import { waitFor } from '../helpers/wait.ts';

const NAME = 'resume.example.com';
const RECONNECTIONS = 20;

describe('TLS session resumption across workers', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let certs: TestCertificates;
  let cert: IssuedCertificate;

  before(async () => {
    certs = await TestCertificates.create();
    cert = await certs.issue(NAME, [NAME]);
    etcd = await EtcdServer.start();
    router = await startRouter({ etcd: etcd.endpoint, https: true, workers: 2, args: ['--cert', cert.certFile, '--key', cert.keyFile] });
  });

  after(async () => {
    await router?.stop();
    await etcd?.close();
    await certs?.close();
  });

  async function assertResumesEveryTime(version: 'TLSv1.3' | 'TLSv1.2'): Promise<void> {
    const first = await resumeOnce(router.httpsPort, version, undefined);
    let session: Buffer | undefined = first.session;
    const reused = first.reused;
    assert.equal(reused, false, 'the first connection is a full handshake');
    const outcomes: boolean[] = [];
    for (let i = 0; i < RECONNECTIONS; i++) {
      const next = await resumeOnce(router.httpsPort, version, session);
      outcomes.push(next.reused);
      // TLS 1.3: a ticket is used once; without a new one the next connection offers nothing.
      session = version === 'TLSv1.3' && !next.fresh ? undefined : next.session;
    }
    assert.deepEqual(outcomes, outcomes.map(() => true), `resumed: ${outcomes.map((r) => (r ? 'r' : '.')).join('')}`);
  }

  // With 2 workers chosen by the kernel's hash of each new connection's source port, 20 reconnections
  // all landing on the worker that issued the first ticket has a probability of about 2^-20: this
  // fails when workers do not share ticket keys.
  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    it(`resumes the session on every one of ${RECONNECTIONS} reconnections over ${version}, whichever worker takes each, using each TLS 1.3 ticket once`, () => assertResumesEveryTime(version));
  }

  // A new default certificate gives the listener a new secure context, which comes with fresh random
  // ticket keys: the shared ones must be put back.
  it('still resumes across workers after the default certificate changes', async () => {
    const replacement = await certs.issue('tug default 2', [NAME]);
    await etcd.put('/tls/default', replacement.etcdValue);
    await waitFor(async () => (await handshake(router.httpsPort, null)).commonName === 'tug default 2', { timeout: 3000, interval: 20, what: 'new default certificate served' });
    await assertResumesEveryTime('TLSv1.3');
  });
});

/**
 * One connection to the HTTPS port offering `session` (if any), with one HTTP/1.1 request so that
 * the server's TLS 1.3 tickets (sent after the handshake) arrive; returns whether the handshake
 * resumed and the newest session to offer next.
 */
function resumeOnce(port: number, version: 'TLSv1.3' | 'TLSv1.2', session: Buffer | undefined): Promise<{ reused: boolean; session: Buffer; fresh: boolean }> {
  return new Promise((resolve, reject) => {
    let latest = session;
    let fresh = false;
    let reused = false;
    const socket = connect({
      host: '127.0.0.1', port, servername: NAME, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'],
      minVersion: version, maxVersion: version, ...(session === undefined ? {} : { session }),
    }, () => {
      reused = socket.isSessionReused();
      socket.write(`GET / HTTP/1.1\r\nHost: ${NAME}\r\nConnection: close\r\n\r\n`);
    });
    socket.on('session', (s: Buffer) => {
      latest = s;
      fresh = true;
    });
    socket.on('data', () => {});
    socket.setTimeout(5000, () => socket.destroy(new Error('connection timed out')));
    socket.once('error', reject);
    socket.once('close', () => {
      if (latest === undefined) reject(new Error('the server sent no session ticket'));
      else resolve({ reused, session: latest, fresh });
    });
  });
}
