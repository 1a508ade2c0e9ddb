// What each handler needs on the request's repository: `pull` to read, `push`
// to write (uploads, manifest PUT), `delete` to delete; `sign-in` for the
// version check (a client learns there how to authenticate) and `catalog` for
// the catalog (filtered per client by its handler). A handler missing here
// needs every action, so a route added without thinking about access is
// closed, not open.
import type { Action } from './access-policy.ts';
import { deleteBlob, getBlob } from '../handlers/blobs.handler.ts';
import { listCatalog } from '../handlers/catalog.handler.ts';
import { deleteManifest, getManifest, putManifest } from '../handlers/manifests.handler.ts';
import { listReferrers } from '../handlers/referrers.handler.ts';
import { versionCheck, type Handler } from '../registry-routes.ts';
import { listTags } from '../handlers/tags.handler.ts';
import { cancelUpload, completeUpload, patchUpload, startUpload, uploadStatus } from '../handlers/uploads.handler.ts';

export type RouteNeeds = readonly Action[] | 'sign-in' | 'catalog';

const NEEDS = new Map<Handler, RouteNeeds>([
  [getManifest, ['pull']],
  [getBlob, ['pull']],
  [listTags, ['pull']],
  [listReferrers, ['pull']],
  [putManifest, ['push']],
  [startUpload, ['push']],
  [uploadStatus, ['push']],
  [patchUpload, ['push']],
  [completeUpload, ['push']],
  [cancelUpload, ['push']],
  [deleteManifest, ['delete']],
  [deleteBlob, ['delete']],
  [listCatalog, 'catalog'],
  [versionCheck, 'sign-in'],
]);

export function routeNeeds(handler: Handler): RouteNeeds {
  return NEEDS.get(handler) ?? ['pull', 'push', 'delete'];
}
