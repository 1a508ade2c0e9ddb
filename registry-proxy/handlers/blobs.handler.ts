// Blob reads and deletes: GET/HEAD /v2/<name>/blobs/<digest> (with Range) and
// DELETE, which removes the blob from the repository; the bytes stay until
// garbage collection, since other repositories may link them.
//
// With --blob-redirect, a GET of a blob the node's cache does not hold is
// answered, after every check a relayed read makes (the gate's access, the
// repository's link, the blob stored), with a 307 to storage's own read-only
// URL of that blob, as distribution does with its cloud drivers: the client
// fetches the bytes from storage and they never pass through the registry.
// A Range is redirected too; the client sends it on to the Location.
import { pipeline } from 'node:stream/promises';
import { API_VERSION_HEADER, send, type Exchange } from '../http-exchange.ts';
import { parseRangeHeader } from './http-ranges.ts';
import { parseDigest } from '../references.ts';
import type { RegistryContext } from '../registry-context.ts';
import { RegistryError } from '../registry-errors.ts';

/** How long a redirect's URL lets a client start reading (a read under way is not cut at expiry); the README says the same. */
export const BLOB_REDIRECT_LIFETIME_MS = 10 * 60_000;

export async function getBlob(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const digest = parseDigest(ex.params[0]);
  const unknown = () => new RegistryError('BLOB_UNKNOWN', undefined, { detail: { digest: digest.value } });
  // A HEAD is mostly a client asking before it pushes, answered 404: it asks
  // for the link alone first. A GET asks for link and size at once.
  const info = ex.req.method === 'GET'
    ? await ctx.blobs.linkedStat(ex.name, digest, ex.signal)
    : (await ctx.blobs.isLinked(ex.name, digest, ex.signal)) ? await ctx.blobs.stat(digest, ex.signal) : null;
  if (!info) throw unknown();
  const headers = {
    ...API_VERSION_HEADER,
    'Content-Type': 'application/octet-stream',
    'Docker-Content-Digest': digest.value,
    ETag: `"${digest.value}"`,
    'Accept-Ranges': 'bytes',
    // Content-addressed: the bytes at this URL never change.
    'Cache-Control': 'max-age=31536000',
  };
  const range = parseRangeHeader(ex.req.headers.range, info.size);
  if (range === 'unsatisfiable') {
    throw new RegistryError('RANGE_INVALID', 'requested range not satisfiable', { headers: { 'Content-Range': `bytes */${info.size}` } });
  }
  const status = range ? 206 : 200;
  const length = range ? range.end - range.start + 1 : info.size;
  const rangeHeaders = range ? { 'Content-Range': `bytes ${range.start}-${range.end}/${info.size}` } : {};
  if (ex.req.method === 'HEAD') {
    ex.res.writeHead(status, { ...headers, ...rangeHeaders, 'Content-Length': length });
    ex.res.end();
    return;
  }
  const location = ctx.blobRedirect ? await ctx.blobs.readUrl(digest, new Date(Date.now() + BLOB_REDIRECT_LIFETIME_MS), ex.signal) : null;
  if (location) {
    // Never cached by anyone: the URL expires, and carries a signature.
    send(ex, 307, { Location: location, 'Docker-Content-Digest': digest.value, 'Cache-Control': 'no-store' });
    return;
  }
  const body = await ctx.blobs.open(digest, range ?? undefined, ex.signal);
  if (!body) throw unknown();
  ex.res.writeHead(status, { ...headers, ...rangeHeaders, 'Content-Length': length });
  // A failure mid-body cuts the connection (the server's error path), so a
  // truncated blob never looks complete to the client.
  await pipeline(body, ex.res);
}

export async function deleteBlob(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const digest = parseDigest(ex.params[0]);
  if (!(await ctx.blobs.unlink(ex.name, digest))) {
    throw new RegistryError('BLOB_UNKNOWN', undefined, { detail: { digest: digest.value } });
  }
  send(ex, 202, { 'Docker-Content-Digest': digest.value });
}
