// How the request fuzzer compares the target a client sent with the target the
// backend received: the router may forward the path as sent or normalised
// (RFC 3986 §6.2.2: percent-encoded unreserved characters decoded, hex digits
// uppercased, then §5.2.4 dot-segment removal), and turns an absolute-form
// target into origin form (RFC 9112 §3.2.2). Both sides are normalised, then
// compared; the query is compared as sent.

/** RFC 3986 §5.2.4 remove_dot_segments. */
export function removeDotSegments(path: string): string {
  let input = path;
  const output: string[] = [];
  while (input.length > 0) {
    if (input.startsWith('../')) input = input.slice(3);
    else if (input.startsWith('./')) input = input.slice(2);
    else if (input.startsWith('/./')) input = input.slice(2);
    else if (input === '/.') input = '/';
    else if (input.startsWith('/../')) {
      input = input.slice(3);
      output.pop();
    } else if (input === '/..') {
      input = '/';
      output.pop();
    } else if (input === '.' || input === '..') input = '';
    else {
      const next = input.indexOf('/', input.startsWith('/') ? 1 : 0);
      const segment = next < 0 ? input : input.slice(0, next);
      output.push(segment);
      input = next < 0 ? '' : input.slice(next);
    }
  }
  return output.join('');
}

/** Percent-encoded unreserved characters decoded, other escapes' hex uppercased (RFC 3986 §6.2.2.1–2). */
export function normalisePercentEncoding(path: string): string {
  return path.replace(/%([0-9A-Fa-f]{2})/g, (_, hex: string) => {
    const c = String.fromCharCode(parseInt(hex, 16));
    return /[A-Za-z0-9\-._~]/.test(c) ? c : `%${hex.toUpperCase()}`;
  });
}

/** The origin-form target a request target stands for (absolute-form: its path and query, '/' when empty). */
export function originForm(target: string): string {
  if (target.startsWith('/')) return target;
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/?#]*([^#]*)/.exec(target);
  if (absolute === null) return target;
  const rest = absolute[1];
  return rest === '' ? '/' : rest.startsWith('?') ? `/${rest}` : rest;
}

/** The authority of an absolute-form target, or null for origin form. */
export function targetAuthority(target: string): string | null {
  const absolute = /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(target);
  return absolute === null ? null : absolute[1];
}

/** The path (normalised) and the query of a target, for comparison. */
export function normalisedTarget(target: string): string {
  const origin = originForm(target);
  const q = origin.indexOf('?');
  const path = q < 0 ? origin : origin.slice(0, q);
  const query = q < 0 ? '' : origin.slice(q);
  return removeDotSegments(normalisePercentEncoding(path)) + query;
}

/**
 * Whether the backend received the target the client sent, up to the normalisation the router may
 * do. An encoded slash (%2F) may be kept as data or decoded before dot-segment removal (issue 10
 * leaves that choice to the router, to be documented); either reading is the same target.
 */
export function sameTargetAfterNormalisation(sent: string, received: string): boolean {
  const got = normalisedTarget(received);
  return normalisedTarget(sent) === got || normalisedTarget(decodeSlashes(sent)) === got;
}

function decodeSlashes(target: string): string {
  const q = target.indexOf('?');
  return q < 0 ? target.replace(/%2f/gi, '/') : target.slice(0, q).replace(/%2f/gi, '/') + target.slice(q);
}
