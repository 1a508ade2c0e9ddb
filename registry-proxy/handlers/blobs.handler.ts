// Blob reads and deletes: GET/HEAD /v2/<name>/blobs/<digest> (with Range) and
// DELETE, which removes the blob from the repository; the bytes stay until
// garbage collection, since other repositories may link them.
import { pipeline } from 'node:stream/promises';
import { API_VERSION_HEADER, send, type Exchange } from '../http-exchange.ts';
import { parseRangeHeader } from './http-ranges.ts';
import { parseDigest } from '../references.ts';
import type { RegistryContext } from '../registry-context.ts';
import { RegistryError } from '../registry-errors.ts';

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
