// `n`/`last` pagination of the tag list and the catalog, with the `Link`
// header that points at the next page (OCI distribution spec, "Listing Tags").
import { RegistryError } from '../registry-errors.ts';

/** The most entries one page may ask for. */
export const MAX_PAGE_SIZE = 10_000;

export interface PageRequest {
  readonly n: number | null;
  readonly last: string | null;
}

export function parsePageRequest(url: URL): PageRequest {
  const nRaw = url.searchParams.get('n');
  let n: number | null = null;
  if (nRaw !== null) {
    n = /^\d{1,9}$/.test(nRaw) ? Number(nRaw) : NaN;
    if (!Number.isInteger(n) || n > MAX_PAGE_SIZE) {
      throw new RegistryError('PAGINATION_NUMBER_INVALID', undefined, { detail: { n: nRaw.slice(0, 50), max: MAX_PAGE_SIZE } });
    }
  }
  return { n, last: url.searchParams.get('last') };
}

/** One page of `sorted` (ascending), and the `Link` header when more entries follow. */
export function paginate(sorted: readonly string[], page: PageRequest, path: string): { items: string[]; link: string | null } {
  const after = page.last === null ? sorted : sorted.filter((s) => s > page.last!);
  if (page.n === null) return { items: [...after], link: null };
  const items = after.slice(0, page.n);
  const more = after.length > items.length && items.length > 0;
  const link = more ? `<${path}?n=${page.n}&last=${encodeURIComponent(items[items.length - 1])}>; rel="next"` : null;
  return { items, link };
}
