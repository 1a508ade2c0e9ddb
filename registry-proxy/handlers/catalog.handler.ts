// GET /v2/_catalog with `n`/`last` pagination and a `Link` to the next page;
// a client sees only the repositories it may pull.
import { sendJson, type Exchange } from '../http-exchange.ts';
import { paginate, parsePageRequest } from './pagination.ts';
import type { RegistryContext } from '../registry-context.ts';

export async function listCatalog(ctx: RegistryContext, ex: Exchange): Promise<void> {
  const page = parsePageRequest(ex.url);
  const { items, link } = paginate((await ctx.catalog.repositories()).filter((name) => ex.access.lists(name)), page, '/v2/_catalog');
  sendJson(ex, 200, { repositories: items }, link ? { Link: link } : {});
}
