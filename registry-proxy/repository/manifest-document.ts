// What the registry understands of a manifest: the four media types it accepts
// (Docker schema2 manifests and lists, OCI manifests and indexes), the
// descriptors a manifest points at (which must exist before it is accepted),
// and the OCI 1.1 fields the referrers API needs (`subject`, `artifactType`).
// Anything else in the JSON is stored byte-for-byte and never rewritten.
import { RegistryError } from '../registry-errors.ts';
import { tryParseDigest, type Digest } from '../references.ts';

export const MediaTypes = {
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
} as const;

const INDEX_TYPES: ReadonlySet<string> = new Set([MediaTypes.dockerManifestList, MediaTypes.ociIndex]);
const MANIFEST_TYPES: ReadonlySet<string> = new Set(Object.values(MediaTypes));

export interface Descriptor {
  readonly mediaType: string;
  readonly digest: Digest;
  readonly size: number;
  readonly artifactType?: string;
  readonly annotations?: Record<string, string>;
  /** Foreign (non-distributable) layers name where to fetch them; the registry never holds them. */
  readonly urls?: readonly string[];
}

export interface ManifestDocument {
  readonly mediaType: string;
  readonly kind: 'image' | 'index';
  readonly config: Descriptor | null;
  readonly layers: readonly Descriptor[];
  readonly manifests: readonly Descriptor[];
  readonly subject: Descriptor | null;
  readonly artifactType: string | null;
  readonly annotations: Record<string, string> | null;
}

/** The media type alone, without parameters, lowercased. */
export function bareMediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0].trim().toLowerCase();
}

/**
 * Parses and validates a manifest as pushed with `contentType`. Throws
 * MANIFEST_INVALID naming the problem; never throws anything else.
 */
export function parseManifest(content: Buffer, contentType?: string): ManifestDocument {
  let json: unknown;
  try {
    json = JSON.parse(content.toString('utf8'));
  } catch {
    throw invalid('not JSON');
  }
  if (!isObject(json)) throw invalid('not a JSON object');
  if (json.schemaVersion !== 2) throw invalid('schemaVersion must be 2');
  const declared = typeof json.mediaType === 'string' ? json.mediaType : null;
  const header = bareMediaType(contentType);
  const inferred = Array.isArray(json.manifests) ? MediaTypes.ociIndex : MediaTypes.ociManifest;
  const mediaType = header !== '' && MANIFEST_TYPES.has(header) ? header : declared ?? inferred;
  if (!MANIFEST_TYPES.has(mediaType)) throw invalid(`unsupported manifest media type ${JSON.stringify(header || mediaType)}`);
  if (declared !== null && declared !== mediaType) throw invalid(`mediaType ${JSON.stringify(declared)} does not match Content-Type ${JSON.stringify(mediaType)}`);
  const kind = INDEX_TYPES.has(mediaType) ? 'index' : 'image';
  const subject = json.subject === undefined ? null : descriptor(json.subject, 'subject');
  const artifactType = json.artifactType === undefined ? null : typeof json.artifactType === 'string' ? json.artifactType : invalidValue('artifactType');
  const annotations = json.annotations === undefined ? null : stringMap(json.annotations, 'annotations');
  if (kind === 'index') {
    if (!Array.isArray(json.manifests)) throw invalid('manifests must be an array');
    const manifests = json.manifests.map((d, i) => descriptor(d, `manifests[${i}]`));
    return { mediaType, kind, config: null, layers: [], manifests, subject, artifactType, annotations };
  }
  if (json.config === undefined) throw invalid('config is required');
  const config = descriptor(json.config, 'config');
  const layersRaw = json.layers ?? [];
  if (!Array.isArray(layersRaw)) throw invalid('layers must be an array');
  const layers = layersRaw.map((d, i) => descriptor(d, `layers[${i}]`));
  return { mediaType, kind, config, layers, manifests: [], subject, artifactType, annotations };
}

/** The media type to serve a stored manifest with (its own `mediaType`, else inferred as OCI). */
export function storedMediaType(content: Buffer): string {
  try {
    const json = JSON.parse(content.toString('utf8')) as Record<string, unknown>;
    if (typeof json.mediaType === 'string') return json.mediaType;
    return Array.isArray(json.manifests) ? MediaTypes.ociIndex : MediaTypes.ociManifest;
  } catch {
    return MediaTypes.ociManifest;
  }
}

/** Blobs that must be in the repository before this manifest is accepted (foreign layers excepted). */
export function referencedBlobs(doc: ManifestDocument): Digest[] {
  const blobs = doc.config ? [doc.config] : [];
  for (const layer of doc.layers) if (!layer.urls || layer.urls.length === 0) blobs.push(layer);
  return blobs.map((d) => d.digest);
}

/** Manifests that must be in the repository before this index is accepted. */
export function referencedManifests(doc: ManifestDocument): Digest[] {
  return doc.manifests.map((d) => d.digest);
}

/**
 * The descriptor of a manifest as the referrers API lists it: an image
 * manifest without `artifactType` is listed with its config's media type.
 */
export function referrerDescriptor(doc: ManifestDocument, digest: Digest, size: number): Record<string, unknown> {
  const artifactType = doc.artifactType ?? (doc.kind === 'image' ? doc.config?.mediaType ?? null : null);
  return {
    mediaType: doc.mediaType,
    digest: digest.value,
    size,
    ...(artifactType === null ? {} : { artifactType }),
    ...(doc.annotations === null ? {} : { annotations: doc.annotations }),
  };
}

function descriptor(value: unknown, where: string): Descriptor {
  if (!isObject(value)) throw invalid(`${where} must be a descriptor object`);
  if (typeof value.mediaType !== 'string' || value.mediaType === '') throw invalid(`${where}.mediaType is required`);
  const digest = typeof value.digest === 'string' ? tryParseDigest(value.digest) : null;
  if (!digest) throw invalid(`${where}.digest is missing, malformed or of an unsupported algorithm`);
  if (typeof value.size !== 'number' || !Number.isSafeInteger(value.size) || value.size < 0) throw invalid(`${where}.size must be a non-negative integer`);
  const urls = value.urls === undefined ? undefined : Array.isArray(value.urls) && value.urls.every((u) => typeof u === 'string') ? value.urls as string[] : invalidValue(`${where}.urls`);
  return {
    mediaType: value.mediaType,
    digest,
    size: value.size,
    ...(typeof value.artifactType === 'string' ? { artifactType: value.artifactType } : {}),
    ...(value.annotations === undefined ? {} : { annotations: stringMap(value.annotations, `${where}.annotations`) }),
    ...(urls ? { urls } : {}),
  };
}

function stringMap(value: unknown, where: string): Record<string, string> {
  if (!isObject(value) || !Object.values(value).every((v) => typeof v === 'string')) throw invalid(`${where} must map strings to strings`);
  return value as Record<string, string>;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalid(reason: string): RegistryError {
  return new RegistryError('MANIFEST_INVALID', `manifest invalid: ${reason}`, { detail: { reason } });
}

function invalidValue(where: string): never {
  throw invalid(`${where} has the wrong type`);
}
