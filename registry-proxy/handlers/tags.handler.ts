// GET /v2/<name>/tags/list with `n`/`last` pagination and a `Link` to the next page.
import { sendJson, type Exchange } from '../http-exchange.ts';
import { paginate, parsePageRequest } from './pagination.ts';
import type { RegistryContext } from '../registry-context.ts';
import { RegistryError } from '../registry-errors.ts';

export async function listTags(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const page = parsePageRequest(ex.url);
  const tags = await ctx.manifests.tags(ex.name);
  if (tags.length === 0 && !(await ctx.manifests.repositoryExists(ex.name))) {
    throw new RegistryError('NAME_UNKNOWN', undefined, { detail: { name: ex.name } });
  }
  const { items, link } = paginate(tags, page, `/v2/${ex.name}/tags/list`);
  sendJson(ex, 200, { name: ex.name, tags: items }, link ? { Link: link } : {});
}
