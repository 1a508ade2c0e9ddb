// Computing digests of content as it streams by. The registry verifies every
// byte it stores against the digest the client names, before it commits.
import { createHash, type Hash } from 'node:crypto';
import type { DigestAlgorithm } from '../references.ts';

export class DigestHasher {
  readonly algorithm: DigestAlgorithm;
  readonly #hash: Hash;
  size = 0;

  constructor(algorithm: DigestAlgorithm) {
    this.algorithm = algorithm;
    this.#hash = createHash(algorithm);
  }

  update(chunk: Buffer): void {
    this.#hash.update(chunk);
    this.size += chunk.length;
  }

  /** `algorithm:hex` of everything so far (the hasher stays usable). */
  digest(): string {
    return `${this.algorithm}:${this.#hash.copy().digest('hex')}`;
  }
}

export function digestOf(content: Buffer, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(content).digest('hex')}`;
}

