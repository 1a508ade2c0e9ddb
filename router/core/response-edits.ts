// How the router changes a backend's response head before a client sees it,
// whatever the protocol: backend fields left out, fields added, and whether the
// body is re-encoded (its length then unknown: the HTTP/1.1 adapter chunks it,
// HTTP/2 needs no framing). Route middlewares (router/middleware/) and sticky
// sessions (sticky-session.ts) make these; each adapter's respond() honours
// them the same way, and the WebSocket adapter applies them to the 101 (and to
// a refused upgrade) with applyToHeaderMap().

export interface ResponseEdits {
  /** Lowercase names of backend fields to leave out. */
  readonly remove: readonly string[];
  /** Fields to add, flat [name, value, ...], lowercase names. */
  readonly add: readonly string[];
  /** The body is re-encoded on its way (compression): no Content-Length, the adapter frames it. */
  readonly reframe: boolean;
}

/** A response head as node:http and node:http2 keep it: lowercase name → value, or values for a repeated field. */
export type HeaderMap = Record<string, string | string[] | number | undefined>;

/** `edits` (or none) with `fields` added after its own, e.g. a sticky session's Set-Cookie. */
export function withFields(edits: ResponseEdits | null, fields: readonly string[]): ResponseEdits {
  return edits === null ? { remove: [], add: fields, reframe: false } : { ...edits, add: [...edits.add, ...fields] };
}

/** Adds fields (flat [name, value, ...], lowercase names) to a header map; a repeated name becomes a list. */
export function addFields(headers: HeaderMap, fields: readonly string[]): void {
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i];
    const existing = headers[name];
    if (existing === undefined) headers[name] = fields[i + 1];
    else if (Array.isArray(existing)) existing.push(fields[i + 1]);
    else headers[name] = [String(existing), fields[i + 1]];
  }
}

/**
 * Applies `edits` to a header map in place, never removing or adding a name `untouchable` says is
 * the protocol's own (a 101's handshake fields). `reframe` does not apply: the map's owner frames.
 */
export function applyToHeaderMap(headers: HeaderMap, edits: ResponseEdits, untouchable: (name: string) => boolean): void {
  for (const name of edits.remove) if (!untouchable(name)) delete headers[name];
  const add: string[] = [];
  for (let i = 0; i < edits.add.length; i += 2) if (!untouchable(edits.add[i])) add.push(edits.add[i], edits.add[i + 1]);
  addFields(headers, add);
}
