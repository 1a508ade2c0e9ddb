// The storage layout: where every object of the registry lives. It is the
// layout of the Docker registry (distribution's registry/storage/paths.go), so
// a container written by distribution with the Azure driver is served as-is and
// what Tug writes can be served by distribution. This file is the only place
// that builds a storage path.
//
//   <root directory>/                               (--root-directory; none by default)
//   └── docker/registry/v2/
//       ├── blobs/                                  content-addressed, shared by all repositories
//       │   └── <algorithm>/<first two hex>/<hex>/
//       │       └── data                            the blob's bytes (layers, configs and manifests alike)
//       └── repositories/
//           └── <name>/                             may contain '/': library/app → library/app/
//               ├── _layers/<algorithm>/<hex>/
//               │   └── link                        "<algorithm>:<hex>": the blob belongs to this repository
//               ├── _manifests/
//               │   ├── revisions/<algorithm>/<hex>/
//               │   │   └── link                    "<algorithm>:<hex>": the manifest is in this repository
//               │   ├── tags/<tag>/
//               │   │   ├── current/link            the digest the tag points at now
//               │   │   └── index/<algorithm>/<hex>/
//               │   │       └── link                every digest the tag has pointed at
//               │   └── referrers/<algorithm>/<subject hex>/<algorithm>/<hex>/
//               │       └── link                    Tug's addition: a manifest whose `subject` is <subject>
//               └── _uploads/<uuid>/                distribution's upload state (data, startedat,
//                                                   hashstates/); Tug keeps its upload state on the
//                                                   node instead (see upload-sessions.ts) and never writes here
//
// Link files hold the digest string and nothing else (no newline), as distribution writes them.
// `referrers/` is an index distribution does not keep; distribution ignores it, and Tug skips an
// entry whose manifest revision is gone (e.g. deleted through distribution).
//
// Blob names in the Azure container: distribution's Azure driver (v3) maps a path to a blob name
// by prefixing the root directory and dropping leading slashes — `blobNameFor` below does the
// same, so with no root directory a layer lives at `docker/registry/v2/blobs/sha256/ab/ab…/data`.
// (distribution 2.x's driver kept a leading `/` in every name; its v3 driver reads such a
// container only with `legacyrootprefix`; Tug does not read that legacy layout yet.)
import type { Digest } from './references.ts';

const ROOT = '/docker/registry/v2';

export const StoragePaths = {
  root: ROOT,
  blobsRoot: `${ROOT}/blobs`,
  repositoriesRoot: `${ROOT}/repositories`,

  blobData(digest: Digest): string {
    return `${ROOT}/blobs/${digest.algorithm}/${digest.hex.slice(0, 2)}/${digest.hex}/data`;
  },

  repository(name: string): string {
    return `${ROOT}/repositories/${name}`;
  },

  layerLink(name: string, digest: Digest): string {
    return `${ROOT}/repositories/${name}/_layers/${digest.algorithm}/${digest.hex}/link`;
  },

  layersDir(name: string): string {
    return `${ROOT}/repositories/${name}/_layers`;
  },

  manifestRevisionLink(name: string, digest: Digest): string {
    return `${ROOT}/repositories/${name}/_manifests/revisions/${digest.algorithm}/${digest.hex}/link`;
  },

  manifestRevisionsDir(name: string): string {
    return `${ROOT}/repositories/${name}/_manifests/revisions`;
  },

  tagsDir(name: string): string {
    return `${ROOT}/repositories/${name}/_manifests/tags`;
  },

  tagDir(name: string, tag: string): string {
    return `${ROOT}/repositories/${name}/_manifests/tags/${tag}`;
  },

  tagCurrentLink(name: string, tag: string): string {
    return `${ROOT}/repositories/${name}/_manifests/tags/${tag}/current/link`;
  },

  tagIndexLink(name: string, tag: string, digest: Digest): string {
    return `${ROOT}/repositories/${name}/_manifests/tags/${tag}/index/${digest.algorithm}/${digest.hex}/link`;
  },

  referrersDir(name: string, subject: Digest): string {
    return `${ROOT}/repositories/${name}/_manifests/referrers/${subject.algorithm}/${subject.hex}`;
  },

  referrerLink(name: string, subject: Digest, referrer: Digest): string {
    return `${ROOT}/repositories/${name}/_manifests/referrers/${subject.algorithm}/${subject.hex}/${referrer.algorithm}/${referrer.hex}/link`;
  },
} as const;

/**
 * The Azure blob name of a storage path, as distribution's Azure driver (v3)
 * computes it: `rootDirectory` without trailing slashes, then the path, with
 * leading slashes dropped.
 */
export function blobNameFor(rootDirectory: string, path: string): string {
  return (rootDirectory.replace(/\/+$/, '') + path).replace(/^\/+/, '');
}

/** The inverse of `blobNameFor` for names listed under the root directory. */
export function pathForBlobName(rootDirectory: string, name: string): string {
  const root = rootDirectory.replace(/^\/+|\/+$/g, '');
  const relative = root === '' ? name : name.startsWith(`${root}/`) ? name.slice(root.length + 1) : name;
  return `/${relative}`;
}
