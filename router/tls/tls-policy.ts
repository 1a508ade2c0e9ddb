// The one TLS policy of the HTTPS listener: TLS 1.2 and 1.3 only, forward-secret
// AEAD ciphers (Mozilla's "intermediate" list for TLS 1.2; OpenSSL's TLS 1.3
// suites are all AEAD). Every secure context the router builds — the listener's
// default one and one per SNI certificate — starts from these options, so a
// certificate can never widen what the listener accepts.
import type { SecureContextOptions } from 'node:tls';

/**
 * TLS 1.3 suites first (named explicitly: Node splits one list into 1.3 and 1.2 suites), then the
 * TLS 1.2 ones: ECDHE only (forward secrecy), AES-GCM and ChaCha20-Poly1305 only (AEAD); all are
 * allowed by HTTP/2 (RFC 9113 §9.2.2).
 */
export const CIPHERS = [
  'TLS_AES_128_GCM_SHA256',
  'TLS_AES_256_GCM_SHA384',
  'TLS_CHACHA20_POLY1305_SHA256',
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export const TLS_POLICY = {
  minVersion: 'TLSv1.2',
  maxVersion: 'TLSv1.3',
  ciphers: CIPHERS,
  // Every listed suite is strong; let the client pick (it knows whether it has AES hardware).
  honorCipherOrder: false,
} as const satisfies SecureContextOptions;
