// The registry's URL space: which handler serves which method and path. The
// repository name is validated here, once, before any handler runs; the other
// path parameters are validated by the handler that knows what they are.
import { deleteBlob, getBlob } from './handlers/blobs.handler.ts';
import { listCatalog } from './handlers/catalog.handler.ts';
import { sendJson, type Exchange } from './http-exchange.ts';
import { deleteManifest, getManifest, putManifest } from './handlers/manifests.handler.ts';
import { parseRepositoryName } from './references.ts';
import { listReferrers } from './handlers/referrers.handler.ts';
import type { RegistryContext } from './registry-context.ts';
import { RegistryError } from './registry-errors.ts';
import { listTags } from './handlers/tags.handler.ts';
import { cancelUpload, completeUpload, patchUpload, startUpload, uploadStatus } from './handlers/uploads.handler.ts';

export type Handler = (ctx: RegistryContext, ex: Exchange) => Promise<void>;

interface Route {
  /** Groups: the repository name first (when the route has one), then the other parameters. */
  readonly pattern: RegExp;
  readonly hasName: boolean;
  readonly methods: Readonly<Record<string, Handler>>;
}

export async function versionCheck(_ctx: RegistryContext, ex: Exchange): Promise<void> {
  sendJson(ex, 200, {});
}

// Order matters where paths overlap: `blobs/uploads` before `blobs/<digest>`.
const ROUTES: readonly Route[] = [
  { pattern: /^\/v2\/?$/, hasName: false, methods: { GET: versionCheck, HEAD: versionCheck } },
  { pattern: /^\/v2\/_catalog$/, hasName: false, methods: { GET: listCatalog } },
  { pattern: /^\/v2\/(.+)\/tags\/list$/, hasName: true, methods: { GET: listTags } },
  { pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/, hasName: true, methods: { GET: getManifest, HEAD: getManifest, PUT: putManifest, DELETE: deleteManifest } },
  { pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/, hasName: true, methods: { POST: startUpload } },
  { pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, hasName: true, methods: { GET: uploadStatus, PATCH: patchUpload, PUT: completeUpload, DELETE: cancelUpload } },
  { pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/, hasName: true, methods: { GET: getBlob, HEAD: getBlob, DELETE: deleteBlob } },
  { pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/, hasName: true, methods: { GET: listReferrers } },
];

export interface RouteMatch {
  readonly handler: Handler;
  readonly name: string;
  readonly params: readonly string[];
}

/** The handler for a request, or a RegistryError (unknown path, method not allowed, invalid name). */
export function matchRoute(method: string, pathname: string): RouteMatch {
  let path: string;
  try {
    path = decodeURIComponent(pathname);
  } catch {
    throw new RegistryError('NAME_INVALID', 'malformed percent-encoding in path');
  }
  for (const route of ROUTES) {
    const match = route.pattern.exec(path);
    if (!match) continue;
    const handler = route.methods[method];
    if (!handler) {
      throw new RegistryError('UNSUPPORTED', `${method} is not supported here`, { headers: { Allow: Object.keys(route.methods).join(', ') } });
    }
    const groups = match.slice(1);
    const name = route.hasName ? parseRepositoryName(groups.shift()!) : '';
    return { handler, name, params: groups };
  }
  throw new RegistryError('UNSUPPORTED', 'no such endpoint', { status: 404 });
}
