// `requestHeaders` / `responseHeaders` of a route rule: `{"set": {name: value},
// "remove": [name]}`. Hop-by-hop fields, the framing and Host are the router's
// own (it writes them itself, so no rule can unframe a message or smuggle one:
// see forward-headers.ts), and are refused at parse time, as is any name or
// value that is not a valid field.
// Never: edit anything per request beyond the one list it is given.

export interface HeaderEditsSpec {
  /** Lowercase name → value. */
  readonly set: Readonly<Record<string, string>>;
  /** Lowercase names. */
  readonly remove: readonly string[];
}

/** Fields no rule may set or remove: hop-by-hop (RFC 9110 §7.6.1), framing, Host, HTTP/2 connection fields. */
const RESERVED = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade', 'content-length', 'host', 'http2-settings']);
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;

/** Parses `{"set", "remove"}` under `key`; a reason naming the key when invalid. */
export function parseHeaderEdits(key: string, value: unknown): HeaderEditsSpec | string {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return `"${key}" must be an object {"set"?: {name: value}, "remove"?: [name]}`;
  const { set = {}, remove = [], ...unknown } = value as Record<string, unknown>;
  if (Object.keys(unknown).length > 0) return `unknown ${key} field ${JSON.stringify(Object.keys(unknown)[0])} (known: set, remove)`;
  if (set === null || typeof set !== 'object' || Array.isArray(set)) return `"${key}.set" must be an object {name: value}`;
  if (!Array.isArray(remove) || !remove.every((n) => typeof n === 'string')) return `"${key}.remove" must be an array of field names`;
  const out: Record<string, string> = {};
  for (const [name, v] of Object.entries(set as Record<string, unknown>)) {
    const bad = checkName(key, 'set', name);
    if (bad !== null) return bad;
    if (typeof v !== 'string' || !FIELD_VALUE.test(v) || v.trim() !== v) return `"${key}.set.${name}" must be a field value (a string without control characters or surrounding spaces)`;
    out[name.toLowerCase()] = v;
  }
  const names: string[] = [];
  for (const name of remove as string[]) {
    const bad = checkName(key, 'remove', name);
    if (bad !== null) return bad;
    names.push(name.toLowerCase());
  }
  return { set: out, remove: [...new Set(names)] };
}

function checkName(key: string, list: string, name: string): string | null {
  if (!TOKEN.test(name)) return `"${key}.${list}": ${JSON.stringify(name)} is not a field name`;
  if (RESERVED.has(name.toLowerCase())) return `"${key}.${list}": ${name} is hop-by-hop, framing or Host, which the router writes itself (refused: ${[...RESERVED].join(', ')})`;
  return null;
}

/** One rule's edits, compiled for a flat [name, value, ...] list. */
export class HeaderEdits {
  /** Every name the edits touch (set names replace the list's own). */
  readonly #drop: ReadonlySet<string>;
  /** What is added, flat [name, value, ...]. */
  readonly add: readonly string[];
  /** Lowercase names to drop (removed and replaced ones). */
  readonly dropNames: readonly string[];

  constructor(spec: HeaderEditsSpec) {
    this.#drop = new Set([...spec.remove, ...Object.keys(spec.set)]);
    this.dropNames = [...this.#drop];
    this.add = Object.entries(spec.set).flat();
  }

  /** Applies the edits to a request's header list, in place. */
  applyTo(headers: string[]): void {
    let out = 0;
    for (let i = 0; i < headers.length; i += 2) {
      if (this.#drop.has(headers[i].toLowerCase())) continue;
      headers[out++] = headers[i];
      headers[out++] = headers[i + 1];
    }
    headers.length = out;
    for (let i = 0; i < this.add.length; i++) headers.push(this.add[i]);
  }
}

/** The value of a field in a flat [name, value, ...] list (names compared case-insensitively; repeats joined), or null. */
export function headerValue(headers: readonly string[], lower: string): string | null {
  let value: string | null = null;
  for (let i = 0; i < headers.length; i += 2) {
    const name = headers[i];
    if (name.length === lower.length && name.toLowerCase() === lower) value = value === null ? headers[i + 1] : `${value}, ${headers[i + 1]}`;
  }
  return value;
}
