// How the router changes a backend's response head before a client sees it,
// whatever the protocol: backend fields left out, fields added, and whether the
// body is re-encoded (its length then unknown: the HTTP/1.1 adapter chunks it,
// HTTP/2 needs no framing). Route middlewares (router/middleware/) make these;
// each adapter's respond() honours them the same way.

export interface ResponseEdits {
  /** Lowercase names of backend fields to leave out. */
  readonly remove: readonly string[];
  /** Fields to add, flat [name, value, ...], lowercase names. */
  readonly add: readonly string[];
  /** The body is re-encoded on its way (compression): no Content-Length, the adapter frames it. */
  readonly reframe: boolean;
}

/** `edits` (or none) with `fields` added after its own, e.g. a sticky session's Set-Cookie. */
export function withFields(edits: ResponseEdits | null, fields: readonly string[]): ResponseEdits {
  return edits === null ? { remove: [], add: fields, reframe: false } : { ...edits, add: [...edits.add, ...fields] };
}
