// The storage layout: where every object of the registry lives. It is the
// layout of the Docker registry (distribution's registry/storage/paths.go), so
// a container written by distribution's Azure driver (v3; 2.x with
// --legacy-root-prefix) is served as-is and what Tug writes can be served by
// distribution. This file is the only place that builds a storage path, and
// `BlobNaming` the only one that names an Azure blob.
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
//                   └── data                        hashstates/). Tug keeps its upload state on the node
//                                                   (see upload-sessions.ts) and stages here only the
//                                                   bytes of an upload in progress, copied to blobs/ once
//                                                   their digest is verified; gc removes what a dead node left
//
// Link files hold the digest string and nothing else (no newline), as distribution writes them.
// `referrers/` is an index distribution does not keep; distribution ignores it, and Tug skips an
// entry whose manifest revision is gone (e.g. deleted through distribution).
//
// Blob names in the Azure container: `BlobNaming` below is the only place that turns a storage
// path into a blob name and back (reads, writes, listings, the catalog, tags and gc all go through
// it). Two namings exist, and a container holds one of them:
//   - distribution v3 (the default): the root directory, then the path, leading slashes dropped:
//     `docker/registry/v2/blobs/sha256/ab/ab…/data`.
//   - distribution 2.x (`--legacy-root-prefix`): the storage path as it is, leading `/` included:
//     `/docker/registry/v2/blobs/sha256/ab/ab…/data` (Azure's portal shows it under a folder with
//     no name). 2.x's driver has no root directory; with one, Tug follows GitLab's registry fork,
//     the one implementation that combines both: `/<root>/docker/registry/v2/…`.
import type { Digest } from '../references.ts';

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

  /** Where an upload in progress stages its bytes (see upload-sessions.ts). */
  uploadData(name: string, uploadId: string): string {
    return `${ROOT}/repositories/${name}/_uploads/${uploadId}/data`;
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
 * How storage paths are named as Azure blobs: distribution v3's naming, or
 * distribution 2.x's with its leading `/` (`legacyRootPrefix`).
 *
 * Sources: distribution v3, registry/storage/driver/azure/azure.go, `blobName`:
 * `strings.TrimLeft(strings.TrimRight(d.rootDirectory, "/")+path, "/")`.
 * distribution 2.8 (github.com/docker/distribution, same file): every call is
 * `GetContainerReference(d.container).GetBlobReference(path)` with the storage
 * path unchanged; `FromParameters` reads accountname, accountkey, container and
 * realm only, so there is no root directory (distribution#1247 describes the
 * resulting `container//docker/registry/v2/…` URLs). `legacyrootprefix` is an
 * option of GitLab's container-registry fork, not of distribution v3; its
 * TestPathToKey gives `/opt/docker/registry/v2` for root `opt`, legacy, and
 * `/docker/registry/v2` with no root. Upstream v3 has no such option: its
 * `blobName` always drops the leading `/`, so it cannot read a 2.x container.
 */
export class BlobNaming {
  /** What every blob name starts with: '', 'root/', '/' or '/root/'. */
  readonly #prefix: string;

  constructor(rootDirectory: string, legacyRootPrefix: boolean) {
    const root = rootDirectory.replace(/^\/+|\/+$/g, '');
    this.#prefix = (legacyRootPrefix ? '/' : '') + (root === '' ? '' : `${root}/`);
  }

  /** The blob name of a storage path (`/docker/registry/v2/…`). */
  blobName(path: string): string {
    return this.#prefix + path.replace(/^\/+/, '');
  }

  /** The storage path of a blob name listed under this naming's prefix. */
  storagePath(name: string): string {
    const relative = name.startsWith(this.#prefix) ? name.slice(this.#prefix.length) : name.replace(/^\/+/, '');
    return `/${relative}`;
  }
}
