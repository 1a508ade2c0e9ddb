// Checks a certificate chain and its private key (PEM) before anything serves
// them: the chain parses, the key parses (unencrypted), the key belongs to the
// leaf certificate, the leaf has not expired, and OpenSSL accepts the pair with
// the listener's TLS policy. The hostnames a certificate serves come from its
// subjectAltName DNS entries (its CN only when it has none).
//
// Runs in the primary (etcd values, --cert/--key files); workers receive only
// pairs that passed. Never throws: an unusable pair yields a reason string.
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { TLS_POLICY } from './tls-policy.ts';

export interface CertificateSpec {
  /** The PEM chain, leaf first. */
  readonly cert: string;
  /** The PEM private key of the leaf. */
  readonly key: string;
  /** Lowercase DNS names the leaf covers: exact names and `*.domain` wildcards. */
  readonly hosts: readonly string[];
  /** The leaf's notAfter, epoch ms. */
  readonly notAfter: number;
  /** The leaf's subject, one line (for logs). */
  readonly subject: string;
}

/** Largest PEM accepted for a chain or a key; far above any real one, and a bound on what reaches OpenSSL. */
const MAX_PEM = 256 * 1024;
const CERTIFICATE_BLOCK = /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+-----END CERTIFICATE-----/g;
const DNS_NAME = /^(?:\*\.)?[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/** Parses and checks a chain and key; returns the reason when the pair cannot be served. */
export function parseCertificate(cert: unknown, key: unknown, now = Date.now()): CertificateSpec | string {
  if (typeof cert !== 'string' || cert.length > MAX_PEM) return '"cert" must be a PEM certificate chain';
  if (typeof key !== 'string' || key.length > MAX_PEM) return '"key" must be a PEM private key';
  const blocks = cert.match(CERTIFICATE_BLOCK);
  if (blocks === null) return '"cert" holds no PEM certificate';
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(blocks[0]);
    for (let i = 1; i < blocks.length; i++) new X509Certificate(blocks[i]);
  } catch (err) {
    return `"cert" is not a valid certificate chain (${(err as Error).message})`;
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key, format: 'pem' });
  } catch (err) {
    return `"key" is not a usable unencrypted PEM private key (${(err as Error).message})`;
  }
  if (!leaf.checkPrivateKey(privateKey)) return '"key" does not match the certificate';
  const notAfter = leaf.validToDate.getTime();
  if (!(notAfter > now)) return `certificate expired at ${leaf.validToDate.toISOString()}`;
  const chain = blocks.join('\n') + '\n';
  try {
    createSecureContext({ ...TLS_POLICY, cert: chain, key });
  } catch (err) {
    return `the certificate and key are refused by TLS (${(err as Error).message})`;
  }
  return { cert: chain, key, hosts: certificateHosts(leaf), notAfter, subject: leaf.subject.replace(/\n/g, ', ') };
}

/** Reads a --cert/--key pair of files and checks it; returns the reason when unusable. */
export function readCertificateFiles(certPath: string, keyPath: string): CertificateSpec | string {
  let cert: string;
  let key: string;
  try {
    cert = readFileSync(certPath, 'utf8');
    key = readFileSync(keyPath, 'utf8');
  } catch (err) {
    return `cannot read: ${(err as Error).message}`;
  }
  return parseCertificate(cert, key);
}

/** DNS names of the subjectAltName, else the subject's CN; invalid names are ignored. */
export function certificateHosts(leaf: X509Certificate): string[] {
  const names: string[] = [];
  for (const entry of (leaf.subjectAltName ?? '').split(/,\s*/)) {
    if (entry.startsWith('DNS:')) names.push(entry.slice(4));
  }
  if (names.length === 0) {
    const cn = /(?:^|\n)CN=([^\n]+)/.exec(leaf.subject);
    if (cn) names.push(cn[1]);
  }
  const hosts = names.map((n) => n.trim().toLowerCase().replace(/\.$/, '')).filter((n) => DNS_NAME.test(n));
  return [...new Set(hosts)];
}

/**
 * Parses a value in the `/tls/<name>` format, `{"cert": PEM chain, "key": PEM}` (also the ACME
 * TLS-ALPN-01 validation certificates'); returns a reason string when unusable.
 */
export function parseCertificateValue(raw: string, now = Date.now()): CertificateSpec | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    return 'certificate value must be JSON {"cert": PEM chain, "key": PEM private key}';
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) return 'certificate value must be a JSON object {"cert", "key"}';
  const { cert, key, ...unknown } = parsed as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown field ${JSON.stringify(Object.keys(unknown)[0])} (known: cert, key)`;
  return parseCertificate(cert, key, now);
}
