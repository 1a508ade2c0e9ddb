// Answers ACME TLS-ALPN-01 validation (RFC 8737) on the HTTPS listener: a
// handshake whose ALPN offers `acme-tls/1` and neither h2 nor http/1.1, for a
// name with a validation certificate in /acme/alpn/ (alpn-challenge-store.ts),
// gets that certificate and `acme-tls/1`, and is closed after the handshake (no
// application data, §3). Whichever router the load balancer picks answers for
// an order any router placed.
//
// Node offers no certificate choice by ALPN; it runs the ALPN callback and the
// certificate (SNI) callback in OpenSSL's order, which depends on the version:
// - TLS 1.3: ALPN first, then the SNI callback. The ALPN callback marks the
//   socket with the validation context and the SNI callback serves it: the
//   choice is per handshake, so normal clients of the name are never affected.
// - TLS 1.2: the SNI callback first, with the ALPN list unknown, so the
//   certificate is chosen before the router could know. Such a handshake gets no
//   `acme-tls/1` (a no_application_protocol alert, as before this existed)
//   rather than the wrong certificate. Validators (Let's Encrypt's, pebble) use
//   Go's TLS stack, which offers TLS 1.3.
//
// Installed only with --acme-challenge tls-alpn-01 (a router without it keeps
// Node's native ALPN list). Cost to normal handshakes then: a JS ALPN callback
// that picks h2 or http/1.1 as the native list did (server preference: h2
// first); the SNI callback reads the mark only while a validation is pending.
import type { SecureContext, TLSSocket } from 'node:tls';
import type { Logger } from '../../common/logger.ts';
import type { AlpnChallengeStore } from './alpn-challenge-store.ts';

export const ACME_TLS_PROTOCOL = 'acme-tls/1';
const VALIDATION = Symbol('tls-alpn-01 validation context');
/** How long a validator may keep the connection after the handshake before it is destroyed. */
const CLOSE_AFTER = 2000;

type MarkedSocket = TLSSocket & { [VALIDATION]?: SecureContext };

export class AlpnChallengeResponder {
  readonly #store: AlpnChallengeStore;
  readonly #log: Logger;

  constructor(store: AlpnChallengeStore, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /** The listener's ALPNCallback (`socket` is the handshaking socket); undefined refuses with no_application_protocol. */
  selectProtocol(socket: TLSSocket, servername: string | undefined, protocols: readonly string[]): string | undefined {
    if (protocols.includes('h2')) return 'h2';
    if (protocols.includes('http/1.1')) return 'http/1.1';
    if (this.#store.size === 0 || !protocols.includes(ACME_TLS_PROTOCOL) || !servername) return undefined;
    const context = this.#store.get(normalize(servername));
    if (context === undefined) return undefined;
    if (socket.getProtocol() !== 'TLSv1.3') {
      this.#log.warn({ host: servername, remote: socket.remoteAddress, version: socket.getProtocol() }, 'TLS-ALPN-01 validation over TLS 1.2 refused: the certificate is chosen before ALPN there');
      return undefined;
    }
    (socket as MarkedSocket)[VALIDATION] = context;
    return ACME_TLS_PROTOCOL;
  }

  /** The validation context the ALPN callback chose for this handshake, if any (read from the SNI callback). */
  validationContext(socket: TLSSocket): SecureContext | undefined {
    return this.#store.size === 0 ? undefined : (socket as MarkedSocket)[VALIDATION];
  }

  /**
   * A handshake that negotiated acme-tls/1 is done: log it (validations are rare, and "which node did
   * the directory reach" is what an operator asks when an order fails) and close it.
   */
  answer(socket: TLSSocket): void {
    this.#log.info({ host: socket.servername, remote: socket.remoteAddress, acme: 'tls-alpn-01' }, 'ACME challenge answered');
    socket.on('error', () => {});
    socket.end();
    setTimeout(() => socket.destroy(), CLOSE_AFTER).unref();
  }
}

function normalize(servername: string): string {
  const name = servername.toLowerCase();
  return name.charCodeAt(name.length - 1) === 46 /* . */ ? name.slice(0, -1) : name;
}
