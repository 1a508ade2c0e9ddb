// Blob uploads: POST /v2/<name>/blobs/uploads/ (a new session, a monolithic
// upload with `?digest=`, or a cross-repository mount with `?mount=&from=`),
// then PATCH chunks, GET status, PUT ?digest= to complete, DELETE to cancel.
import { hasBody, send, type Exchange } from '../http-exchange.ts';
import { parseContentRange, uploadedRange } from './http-ranges.ts';
import { isRepositoryName, parseDigest, tryParseDigest, type Digest } from '../references.ts';
import type { RegistryContext } from '../registry-context.ts';
import { RegistryError } from '../registry-errors.ts';
import type { UploadSession } from '../repository/upload-sessions.ts';

export async function startUpload(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const mount = ex.url.searchParams.get('mount');
  if (mount !== null) {
    // A mount the registry cannot do — an unknown blob, but also a malformed
    // digest or `from` — is answered, as distribution does, with a fresh upload.
    const digest = tryParseDigest(mount);
    const fromRaw = ex.url.searchParams.get('from');
    const from = fromRaw === null ? null : isRepositoryName(fromRaw) ? fromRaw : undefined;
    if (digest && from !== undefined && await mountable(ctx, ex, digest, from)) {
      await ctx.blobs.link(ex.name, digest);
      created(ex, digest);
      return;
    }
    // Not mountable: the spec's answer is a fresh upload session.
  }
  const digestParam = ex.url.searchParams.get('digest');
  if (digestParam !== null) {
    const digest = parseDigest(digestParam);
    await ctx.blobs.storeVerified(digest, ex.req, ex.signal, contentLength(ex));
    await ctx.blobs.link(ex.name, digest);
    created(ex, digest);
    return;
  }
  const session = await ctx.uploads.create(ex.name);
  ex.req.resume(); // a session start carries no content
  send(ex, 202, sessionHeaders(ex, session));
}

export async function uploadStatus(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const session = await ctx.uploads.get(ex.name, ex.params[0]);
  send(ex, 204, sessionHeaders(ex, session));
}

export async function patchUpload(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const session = await ctx.uploads.get(ex.name, ex.params[0]);
  await session.exclusive(async () => {
    checkContentRange(ex, session);
    await ctx.uploads.append(session, ex.req, contentLength(ex));
  });
  send(ex, 202, sessionHeaders(ex, session));
}

export async function completeUpload(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const session = await ctx.uploads.get(ex.name, ex.params[0]);
  const digestParam = ex.url.searchParams.get('digest');
  if (digestParam === null) throw new RegistryError('DIGEST_INVALID', 'digest query parameter is required');
  const digest = parseDigest(digestParam);
  await session.exclusive(async () => {
    checkContentRange(ex, session);
    await ctx.uploads.complete(session, digest, hasBody(ex.req) ? ex.req : null, contentLength(ex), ex.signal);
  });
  created(ex, digest);
}

export async function cancelUpload(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const session = await ctx.uploads.get(ex.name, ex.params[0]);
  await session.exclusive(() => ctx.uploads.cancel(session));
  send(ex, 204);
}

/** Repositories searched for a blob mounted without `from` by a client that may not pull everywhere. */
const MOUNT_SEARCH_LIMIT = 50;

/**
 * Whether the blob can be linked into the repository without upload: it is in
 * `from`, which the client may pull; without `from`, it is anywhere when the
 * client may pull everything, else in one of the repositories it may pull.
 */
async function mountable(ctx: RegistryContext, ex: Exchange, digest: Digest, from: string | null): Promise<boolean> {
  if (from !== null) {
    if (!ex.access.may(from, 'pull') || !(await ctx.blobs.isLinked(from, digest, ex.signal))) return false;
  } else if (!ex.access.pullsEverywhere) {
    const pullable = (await ctx.catalog.repositories()).filter((name) => ex.access.may(name, 'pull')).slice(0, MOUNT_SEARCH_LIMIT);
    let found = false;
    for (const name of pullable) if (!found) found = await ctx.blobs.isLinked(name, digest, ex.signal);
    if (!found) return false;
  }
  // Storage's word, not the node cache's, and renewed against a gc running now.
  return ctx.blobs.renew(digest);
}

/** Chunks must arrive in order: a chunk that does not start where the upload ends is refused with 416. */
function checkContentRange(ex: Exchange, session: UploadSession): void {
  const header = ex.req.headers['content-range'];
  if (header === undefined) return;
  const range = parseContentRange(header);
  const length = ex.req.headers['content-length'] === undefined ? null : Number(ex.req.headers['content-length']);
  const fits = range !== null && range.start === session.size && (length === null || length === range.end - range.start + 1);
  if (!fits) {
    throw new RegistryError('RANGE_INVALID', `chunk must start at byte ${session.size}`, {
      detail: { contentRange: header.slice(0, 100), uploaded: session.size },
      headers: { Location: location(ex, session), Range: uploadedRange(session.size), 'Docker-Upload-UUID': session.id },
    });
  }
}

/** The request body's declared length; null when it comes chunked. */
function contentLength(ex: Exchange): number | null {
  const header = ex.req.headers['content-length'];
  return header === undefined || !/^\d+$/.test(header) ? null : Number(header);
}

function sessionHeaders(ex: Exchange, session: UploadSession): Record<string, string> {
  return { Location: location(ex, session), Range: uploadedRange(session.size), 'Docker-Upload-UUID': session.id };
}

function location(ex: Exchange, session: UploadSession): string {
  return `/v2/${ex.name}/blobs/uploads/${session.id}`;
}

function created(ex: Exchange, digest: Digest): void {
  send(ex, 201, { Location: `/v2/${ex.name}/blobs/${digest.value}`, 'Docker-Content-Digest': digest.value });
}
