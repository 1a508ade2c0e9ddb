// The grammar of what clients name: repository names, tags and digests, as the
// OCI distribution spec and distribution's reference package define them. Every
// name, tag and digest that reaches storage went through one of these parsers,
// which is what keeps a request from ever addressing a path outside its
// repository (no `..`, no `/` in a tag, no percent-escapes, no empty segment).
import { RegistryError } from './registry-errors.ts';

/** `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` components joined by `/` (the spec's `<name>`). */
const NAME = /^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$/;
/** distribution's limit on a whole repository name. */
export const MAX_NAME_LENGTH = 255;
const TAG = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
/** The spec's general digest grammar; only the algorithms below are accepted. */
const DIGEST = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/;

export type DigestAlgorithm = 'sha256' | 'sha512';

const ENCODED: Record<DigestAlgorithm, RegExp> = {
  sha256: /^[a-f0-9]{64}$/,
  sha512: /^[a-f0-9]{128}$/,
};

export interface Digest {
  readonly algorithm: DigestAlgorithm;
  /** lowercase hex */
  readonly hex: string;
  /** `algorithm:hex` */
  readonly value: string;
}

export function isRepositoryName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME.test(name);
}

export function parseRepositoryName(name: string): string {
  if (!isRepositoryName(name)) throw new RegistryError('NAME_INVALID', 'invalid repository name', { detail: { name: name.slice(0, 300) } });
  return name;
}

export function isTag(tag: string): boolean {
  return TAG.test(tag);
}

/** A digest the registry can verify, or null: malformed, or an algorithm it does not compute. */
export function tryParseDigest(value: string): Digest | null {
  const match = DIGEST.exec(value);
  if (!match) return null;
  const algorithm = match[1] as DigestAlgorithm;
  if (!Object.hasOwn(ENCODED, algorithm) || !ENCODED[algorithm].test(match[2])) return null;
  return { algorithm, hex: match[2], value };
}

export function parseDigest(value: string): Digest {
  const digest = tryParseDigest(value);
  if (!digest) throw new RegistryError('DIGEST_INVALID', 'invalid or unsupported digest', { detail: { digest: value.slice(0, 300) } });
  return digest;
}

export type ManifestReference = { readonly kind: 'tag'; readonly tag: string } | { readonly kind: 'digest'; readonly digest: Digest };

/**
 * A manifest `<reference>` to look up: null when it is neither a valid tag nor
 * a digest the registry computes, which names nothing the registry can hold —
 * so reads and deletes answer MANIFEST_UNKNOWN for it (as distribution does),
 * and only a PUT, which would create it, refuses it as invalid.
 */
export function tryParseManifestReference(reference: string): ManifestReference | null {
  if (reference.includes(':')) {
    const digest = tryParseDigest(reference);
    return digest ? { kind: 'digest', digest } : null;
  }
  return isTag(reference) ? { kind: 'tag', tag: reference } : null;
}

/** A manifest `<reference>` to store under: a digest when it has a `:`, else a tag; invalid ones are DIGEST_INVALID / TAG_INVALID. */
export function parseManifestReference(reference: string): ManifestReference {
  if (reference.includes(':')) return { kind: 'digest', digest: parseDigest(reference) };
  if (!isTag(reference)) throw new RegistryError('TAG_INVALID', 'invalid tag', { detail: { tag: reference.slice(0, 300) } });
  return { kind: 'tag', tag: reference };
}
