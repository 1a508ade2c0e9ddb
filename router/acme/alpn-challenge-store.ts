// The TLS-ALPN-01 validation certificates of the cluster's orders (etcd
// /acme/alpn/<host>), as every worker holds them: host → secure context, built
// once when the key arrives. Read only by a handshake that offers acme-tls/1
// without h2 or http/1.1, so a lookup is one Map get and normal handshakes never
// read it (alpn-challenge-responder.ts).
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TableChange } from '../etcd/route-keys.ts';
import { parseCertificateValue } from '../tls/tls-certificate.ts';
import { TLS_POLICY } from '../tls/tls-policy.ts';

export interface AlpnCertificate {
  readonly cert: string;
  readonly key: string;
}

export class AlpnChallengeStore {
  readonly #contexts = new Map<string, SecureContext>();

  /** Applies alpn-challenge changes; other kinds are skipped. Returns the refused ones (key: reason). */
  apply(changes: readonly TableChange[]): string[] {
    const refused: string[] = [];
    for (const change of changes) {
      if (change.kind !== 'alpn-challenge') continue;
      if (change.certificate === null) {
        this.#contexts.delete(change.host);
        continue;
      }
      try {
        this.#contexts.set(change.host, createSecureContext({ ...TLS_POLICY, cert: change.certificate.cert, key: change.certificate.key }));
      } catch (err) {
        refused.push(`${change.key}: ${(err as Error).message}`);
      }
    }
    return refused;
  }

  get(host: string): SecureContext | undefined {
    return this.#contexts.get(host);
  }

  get size(): number {
    return this.#contexts.size;
  }
}

/**
 * Checks a /acme/alpn/<host> value, `{"cert", "key"}`: a certificate whose only name is <host> and
 * its key. Its validity period is not checked: RFC 8737 validation certificates are self-signed and
 * short-lived by design (acme-client makes them valid for an instant); the validator checks the
 * acmeIdentifier extension.
 */
export function parseAlpnCertificate(host: string, raw: string): AlpnCertificate | string {
  const spec = parseCertificateValue(raw, 0);
  if (typeof spec === 'string') return spec;
  if (spec.hosts.length !== 1 || spec.hosts[0] !== host) return `the validation certificate must name exactly ${host} (it names ${spec.hosts.join(', ') || 'nothing'})`;
  return { cert: spec.cert, key: spec.key };
}
