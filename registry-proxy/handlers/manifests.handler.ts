// Manifests: GET/HEAD/PUT/DELETE /v2/<name>/manifests/<tag or digest>, for
// Docker schema2 manifests and lists and OCI manifests and indexes. A PUT is
// accepted only when everything it points at is already in the repository
// (its `subject` excepted, as OCI 1.1 allows), and answers `OCI-Subject` when
// it has one, telling the client the referrers API indexed it.
import { digestOf } from '../storage/content-digest.ts';
import { readBodyUpTo, send, type Exchange } from '../http-exchange.ts';
import { parseManifest, referencedBlobs, referencedManifests, storedMediaType } from '../repository/manifest-document.ts';
import { parseDigest, parseManifestReference, tryParseManifestReference, type Digest } from '../references.ts';
import type { RegistryContext } from '../registry-context.ts';
import { RegistryError } from '../registry-errors.ts';
import type { StoredManifest } from '../repository/repository-manifests.ts';

/** References of one manifest renewed at the same time (each renewal is one or two Azure requests at once). */
const RENEWALS_AT_ONCE = 8;

export async function getManifest(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const manifest = await findManifest(ctx, ex);
  send(ex, 200, {
    'Content-Type': storedMediaType(manifest.content),
    'Docker-Content-Digest': manifest.digest.value,
    ETag: `"${manifest.digest.value}"`,
  }, manifest.content);
}

export async function putManifest(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const reference = parseManifestReference(ex.params[0]);
  const content = await readBodyUpTo(ex.req, ctx.maxManifestSize);
  if (content === null) {
    throw new RegistryError('MANIFEST_INVALID', `manifest larger than ${ctx.maxManifestSize} bytes`, { status: 413, detail: { limit: ctx.maxManifestSize } });
  }
  const doc = parseManifest(content, ex.req.headers['content-type']);
  const digest = parseDigest(digestOf(content, reference.kind === 'digest' ? reference.digest.algorithm : 'sha256'));
  if (reference.kind === 'digest' && reference.digest.value !== digest.value) {
    throw new RegistryError('DIGEST_INVALID', undefined, { detail: { expected: reference.digest.value, computed: digest.value } });
  }
  // Asked of storage, never of a node's cache, and renewed: a garbage
  // collection running now then cannot delete what this manifest needs (it
  // deletes only what was not modified since it started), and one that
  // already did makes this PUT fail rather than store a manifest of nothing.
  // Both link and data: distribution's gc removes blobs and leaves their links.
  // The renewals are independent round trips, so they run side by side: a
  // push's final PUT waits for about one of them, not one per reference.
  const renewals = [
    ...unique(referencedBlobs(doc)).map((blob) => ({ digest: blob, renew: async () => (await Promise.all([ctx.blobs.renewLink(ex.name, blob), ctx.blobs.renew(blob)])).every(Boolean) })),
    ...unique(referencedManifests(doc)).map((child) => ({ digest: child, renew: () => ctx.manifests.renew(ex.name, child) })),
  ];
  const renewed = await runAtMost(RENEWALS_AT_ONCE, renewals.map((r) => r.renew));
  const missing = renewals.find((_, i) => !renewed[i]);
  if (missing) throw blobUnknown(missing.digest);
  await ctx.manifests.put(ex.name, digest, content, doc, reference.kind === 'tag' ? reference.tag : null);
  send(ex, 201, {
    Location: `/v2/${ex.name}/manifests/${digest.value}`,
    'Docker-Content-Digest': digest.value,
    ...(doc.subject ? { 'OCI-Subject': doc.subject.digest.value } : {}),
  });
}

/** DELETE by digest removes the manifest (and the tags on it); DELETE by tag removes only the tag. */
export async function deleteManifest(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const reference = tryParseManifestReference(ex.params[0]);
  if (!reference) throw manifestUnknown(ex.params[0]);
  if (reference.kind === 'tag') {
    if (!(await ctx.manifests.deleteTag(ex.name, reference.tag))) throw manifestUnknown(reference.tag);
    send(ex, 202);
    return;
  }
  const manifest = await ctx.manifests.read(ex.name, reference.digest, ex.signal);
  if (!manifest) throw manifestUnknown(reference.digest.value);
  await ctx.manifests.delete(ex.name, manifest);
  send(ex, 202);
}

async function findManifest(ctx: RegistryContext, ex: Exchange): Promise<StoredManifest> {
  const reference = tryParseManifestReference(ex.params[0]);
  if (!reference) throw manifestUnknown(ex.params[0]);
  const digest = reference.kind === 'digest' ? reference.digest : await ctx.manifests.resolveTag(ex.name, reference.tag, ex.signal);
  const manifest = digest ? await ctx.manifests.read(ex.name, digest, ex.signal) : null;
  if (!manifest) throw manifestUnknown(ex.params[0]);
  return manifest;
}

function manifestUnknown(reference: string): RegistryError {
  return new RegistryError('MANIFEST_UNKNOWN', undefined, { detail: { reference: reference.slice(0, 300) } });
}

function blobUnknown(digest: Digest): RegistryError {
  return new RegistryError('MANIFEST_BLOB_UNKNOWN', undefined, { detail: { digest: digest.value } });
}

function unique(digests: readonly Digest[]): Digest[] {
  return [...new Map(digests.map((d) => [d.value, d])).values()];
}

/**
 * Runs every task, `limit` at a time, and returns their results in order; a
 * task that throws stops the rest from starting and its error is thrown once
 * the running ones have settled.
 */
async function runAtMost<T>(limit: number, tasks: readonly (() => Promise<T>)[]): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  let failure: { readonly err: unknown } | null = null;
  const worker = async () => {
    while (next < tasks.length && !failure) {
      const index = next++;
      try {
        results[index] = await tasks[index]();
      } catch (err) {
        failure ??= { err };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  if (failure) throw (failure as { readonly err: unknown }).err;
  return results;
}
