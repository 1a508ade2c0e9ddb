// Where ACME lives in etcd, drawn once (under the router's --etcd-prefix):
//
//   <prefix>/acme/account                 = {"key": PEM}: the ACME account's private key, shared by
//                                           every router (restrict it like /tls/)
//   <prefix>/acme/challenges/<token>      = the HTTP-01 key authorization "<token>.<thumbprint>",
//                                           on the ordering router's lock lease; every router answers it
//   <prefix>/acme/alpn/<host>             = {"cert", "key"}: the TLS-ALPN-01 validation certificate of
//                                           <host> (RFC 8737), on the lock lease; every router serves it
//                                           to a handshake offering only acme-tls/1 for <host>
//   <prefix>/acme/locks/<host>            = the router ordering <host> now ("<node>:<pid>:<nonce>"), on
//                                           a lease of --acme-lock-ttl: a dead holder's lock expires
//   <prefix>/acme/state/<host>            = AcmeState JSON: pending, valid until, renewing, failing
//   <prefix>/tls/acme-<host>              = the issued chain and key, in the /tls/ format every router serves
import { HOST_NAME } from '../etcd/host-name.ts';

export const ACME_CERTIFICATE_PREFIX = 'acme-';

export class AcmeKeys {
  readonly account: string;
  readonly challengesPrefix: string;
  readonly alpnPrefix: string;
  readonly locksPrefix: string;
  readonly statePrefix: string;
  readonly #tlsPrefix: string;

  constructor(root: string, tlsPrefix: string) {
    this.account = `${root}/acme/account`;
    this.challengesPrefix = `${root}/acme/challenges/`;
    this.alpnPrefix = `${root}/acme/alpn/`;
    this.locksPrefix = `${root}/acme/locks/`;
    this.statePrefix = `${root}/acme/state/`;
    this.#tlsPrefix = tlsPrefix;
  }

  challenge(token: string): string {
    return `${this.challengesPrefix}${token}`;
  }

  alpn(host: string): string {
    return `${this.alpnPrefix}${host}`;
  }

  lock(host: string): string {
    return `${this.locksPrefix}${host}`;
  }

  state(host: string): string {
    return `${this.statePrefix}${host}`;
  }

  certificate(host: string): string {
    return `${this.#tlsPrefix}${ACME_CERTIFICATE_PREFIX}${host}`;
  }
}

/** The exact host whose ACME certificate a /tls/<name> name holds, or null for other names. */
export function acmeCertificateHost(name: string): string | null {
  if (!name.startsWith(ACME_CERTIFICATE_PREFIX)) return null;
  const host = name.slice(ACME_CERTIFICATE_PREFIX.length);
  return isExactHost(host) ? host : null;
}

/** An exact (not wildcard) hostname as route rules spell them, lowercase. */
export function isExactHost(host: string): boolean {
  return !host.startsWith('*.') && HOST_NAME.test(host);
}
