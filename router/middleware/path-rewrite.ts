// `stripPrefix` / `addPrefix`: the path the backend sees, made from the
// normalised path (after routing, so a rule's `paths` still match what the
// client asked for), query kept. Stripping happens on segment boundaries only:
// "/api" strips "/api/x" and "/api?q", never "/apix".

const PREFIX = /^\/[\x21-\x7e]*$/;

/** Validates a prefix under `key` (a trailing '/' is dropped; "/" alone is refused: it changes nothing); a reason naming the key when invalid. */
export function parsePrefix(key: string, value: unknown): { readonly prefix: string } | string {
  if (typeof value !== 'string' || !PREFIX.test(value) || value.includes('?') || value.includes('#')) return `"${key}" must be a path prefix: "/" then printable ASCII, no ? or #`;
  if (value === '/') return `"${key}": "/" changes nothing; leave it out`;
  return { prefix: value.endsWith('/') ? value.slice(0, -1) : value };
}

export class PathRewrite {
  readonly #strip: string | null;
  readonly #add: string | null;

  constructor(strip: string | null, add: string | null) {
    this.#strip = strip;
    this.#add = add;
  }

  /** The backend's path for a normalised path-and-query. */
  apply(path: string): string {
    let out = path;
    const strip = this.#strip;
    if (strip !== null && out.startsWith(strip)) {
      const next = out.charCodeAt(strip.length);
      if (out.length === strip.length) out = '/';
      else if (next === 47 /* / */) out = out.slice(strip.length);
      else if (next === 63 /* ? */) out = `/${out.slice(strip.length)}`;
    }
    return this.#add === null ? out : this.#add + out;
  }
}
