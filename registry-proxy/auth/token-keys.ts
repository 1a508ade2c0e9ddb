// The keys of token auth: the public keys the registry verifies tokens with
// (`--token-keys`: PEM public keys or certificates, one or more, or a JWKS
// document) and the private key `tug registry token-server` signs with
// (`--key`, PEM). The issuer names its key in the token's `kid` as
// distribution does: the libtrust key id (libtrustKeyId), the only `kid`
// distribution 2.x looks up in its rootcertbundle, so its tokens serve a
// distribution registry too. A registry holding several keys (during a key
// rotation) picks the right one by that id, or by the RFC 7638 JWK thumbprint
// (the `kid` Tug's issuer used before), or by a JWKS entry's own `kid`;
// tokens without a known `kid` are tried against every key. Only asymmetric
// keys: a registry never holds a secret that could mint tokens.
import { createHash, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { calculateJwkThumbprint, exportJWK, type JWK } from 'jose';
import { configError } from '../../common/errors.ts';

export interface VerificationKey {
  readonly key: KeyObject;
  /** The `kid`s that name this key: a JWKS entry's own, else its libtrust id and its JWK thumbprint. */
  readonly kids: readonly string[];
  /** The JWS algorithms this key verifies. */
  readonly algorithms: readonly string[];
}

export interface SigningKey {
  readonly key: KeyObject;
  readonly kid: string;
  readonly algorithm: string;
}

const PEM_BLOCK = /-----BEGIN ([A-Z ]+)-----[\s\S]+?-----END \1-----/g;

export async function loadVerificationKeys(flag: string, path: string): Promise<VerificationKey[]> {
  const text = await readText(flag, path);
  const keys: KeyObject[] = [];
  const declaredKids: (string | undefined)[] = [];
  try {
    if (text.trimStart().startsWith('{')) {
      const jwks = JSON.parse(text) as { keys?: unknown };
      if (!Array.isArray(jwks.keys)) throw new Error('a JWKS document has a "keys" list');
      for (const jwk of jwks.keys as (JWK & { d?: string })[]) {
        if (jwk.d !== undefined) throw new Error('a JWKS for verification must hold public keys only');
        keys.push(createPublicKey({ key: jwk as never, format: 'jwk' }));
        declaredKids.push(jwk.kid);
      }
    } else {
      for (const block of text.match(PEM_BLOCK) ?? []) {
        if (/PRIVATE KEY/.test(block)) throw new Error('holds a private key; give the public key (openssl pkey -pubout)');
        keys.push(createPublicKey(block));
        declaredKids.push(undefined);
      }
    }
  } catch (err) {
    throw configError(`${flag}: ${path}: ${(err as Error).message}`);
  }
  if (keys.length === 0) throw configError(`${flag}: ${path} holds no PEM public key or JWKS`);
  return Promise.all(keys.map(async (key, i) => ({
    key,
    kids: declaredKids[i] !== undefined ? [declaredKids[i]] : [libtrustKeyId(key), await thumbprint(key)],
    algorithms: algorithmsOf(flag, key),
  })));
}

export async function loadSigningKey(flag: string, path: string): Promise<SigningKey> {
  const text = await readText(flag, path);
  let key: KeyObject;
  try {
    key = createPrivateKey(text);
  } catch (err) {
    throw configError(`${flag}: ${path} is not a PEM private key: ${(err as Error).message}`);
  }
  const algorithm = algorithmsOf(flag, key)[0];
  return { key, kid: libtrustKeyId(createPublicKey(key)), algorithm };
}

/**
 * The key id of docker/libtrust (`keyIDFromCryptoKey`), which distribution
 * 2.x compares a token's `kid` with: SHA-256 of the DER SubjectPublicKeyInfo,
 * its first 240 bits in base32, as twelve groups of four joined by `:`.
 */
export function libtrustKeyId(publicKey: KeyObject): string {
  const hash = createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest().subarray(0, 30);
  return base32(hash).match(/.{4}/g)!.join(':');
}

/** RFC 4648 base32 without padding (30 bytes make 48 characters, no padding needed). */
function base32(bytes: Buffer): string {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let out = '';
  let bits = 0;
  let value = 0;
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return out;
}

async function readText(flag: string, path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    throw configError(`${flag}: cannot read ${path}: ${(err as Error).message}`);
  }
}

async function thumbprint(publicKey: KeyObject): Promise<string> {
  return calculateJwkThumbprint(await exportJWK(publicKey));
}

function algorithmsOf(flag: string, key: KeyObject): string[] {
  switch (key.asymmetricKeyType) {
    case 'rsa': return ['RS256', 'RS384', 'RS512'];
    case 'rsa-pss': return ['PS256', 'PS384', 'PS512'];
    case 'ed25519': return ['EdDSA'];
    case 'ec': {
      const curve = key.asymmetricKeyDetails?.namedCurve;
      if (curve === 'prime256v1') return ['ES256'];
      if (curve === 'secp384r1') return ['ES384'];
      if (curve === 'secp521r1') return ['ES512'];
      throw configError(`${flag}: EC curve ${curve} is not one JWS signs with (P-256, P-384, P-521)`);
    }
    default: throw configError(`${flag}: ${key.asymmetricKeyType} keys are not supported (RSA, EC or Ed25519)`);
  }
}
