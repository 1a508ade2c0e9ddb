// GET /v2/<name>/referrers/<digest>[?artifactType=…] (OCI distribution 1.1):
// an image index listing the manifests whose `subject` is <digest>, filtered
// by artifact type when asked (and saying so in `OCI-Filters-Applied`). An
// unknown subject is an empty list, never a 404.
import { sendJson, type Exchange } from '../http-exchange.ts';
import { MediaTypes, referrerDescriptor } from '../repository/manifest-document.ts';
import { parseDigest } from '../references.ts';
import type { RegistryContext } from '../registry-context.ts';

export async function listReferrers(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const subject = parseDigest(ex.params[0]);
  const artifactType = ex.url.searchParams.get('artifactType');
  const referrers = await ctx.manifests.referrers(ex.name, subject, ex.signal);
  const manifests = referrers
    .map(({ manifest, doc }) => referrerDescriptor(doc, manifest.digest, manifest.content.length))
    .filter((d) => artifactType === null || d.artifactType === artifactType);
  sendJson(ex, 200, { schemaVersion: 2, mediaType: MediaTypes.ociIndex, manifests }, {
    'Content-Type': MediaTypes.ociIndex,
    ...(artifactType === null ? {} : { 'OCI-Filters-Applied': 'artifactType' }),
  });
}
