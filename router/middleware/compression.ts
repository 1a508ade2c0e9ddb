// `compress`: gzip or brotli (node:zlib) for responses of compressible types,
// chosen by the client's Accept-Encoding q-values (brotli on a tie), streamed:
// the body goes through the encoder as it comes, with backpressure both ways
// (the encoder's input full pauses the backend, the client not reading pauses
// the encoder), never buffered whole. Never for a response that is already
// encoded, a range (the request had Range, or a 206), Cache-Control:
// no-transform, a body under MIN_LENGTH, HEAD or a bodiless status. A
// compressible response gets Vary: Accept-Encoding whether encoded or not, and a
// strong ETag of an encoded one becomes weak (it is another representation).
import { constants, createBrotliCompress, createGzip, type BrotliCompress, type Gzip } from 'node:zlib';
import type { ClientSide } from '../core/client-side.ts';

export type Encoding = 'br' | 'gzip';

/** `true` (the default types) or a list of media types, `type/*` allowed. */
export type CompressSpec = true | readonly string[];

/** Smaller bodies (by their Content-Length) are sent as they are: the encoding's overhead would eat the gain. */
export const MIN_LENGTH = 1024;
const DEFAULT_TYPES = ['text/*', 'application/json', 'application/javascript', 'application/xml', 'application/wasm', 'application/manifest+json', 'image/svg+xml'];
const MEDIA_TYPE = /^[a-z0-9!#$&^_.+-]+\/(?:\*|[a-z0-9!#$&^_.+-]+)$/;

export function parseCompress(value: unknown): CompressSpec | null | string {
  if (value === undefined || value === false) return null;
  if (value === true) return true;
  if (!Array.isArray(value) || value.length === 0 || !value.every((t) => typeof t === 'string' && MEDIA_TYPE.test(t.toLowerCase()))) {
    return '"compress" must be true, false or a non-empty array of media types like "application/json" or "text/*"';
  }
  return value.map((t: string) => t.toLowerCase());
}

/** The encoding to use for an Accept-Encoding value, or null (RFC 9110 §12.5.3: q=0 refuses, `*` stands for the others). */
export function negotiateEncoding(accept: string | null): Encoding | null {
  if (accept === null) return null;
  let br = -1;
  let gzip = -1;
  let any = -1;
  for (const part of accept.split(',')) {
    const semi = part.indexOf(';');
    const coding = (semi < 0 ? part : part.slice(0, semi)).trim().toLowerCase();
    let q = 1;
    if (semi >= 0) {
      const m = /(?:^|;)\s*q\s*=\s*([01](?:\.\d{0,3})?)\s*(?:;|$)/i.exec(part.slice(semi));
      q = m ? Number(m[1]) : 1;
    }
    if (coding === 'br') br = q;
    else if (coding === 'gzip' || coding === 'x-gzip') gzip = Math.max(gzip, q);
    else if (coding === '*') any = q;
  }
  if (br < 0) br = any;
  if (gzip < 0) gzip = any;
  if (br <= 0 && gzip <= 0) return null;
  return br >= gzip ? 'br' : 'gzip';
}

export class Compression {
  readonly #exact: ReadonlySet<string>;
  /** `type/` of `type/*` entries. */
  readonly #families: readonly string[];
  readonly #suffixes: boolean;

  constructor(spec: CompressSpec) {
    const types = spec === true ? DEFAULT_TYPES : spec;
    this.#exact = new Set(types.filter((t) => !t.endsWith('/*')));
    this.#families = types.filter((t) => t.endsWith('/*')).map((t) => t.slice(0, -1));
    // The default list covers structured syntaxes (application/problem+json, application/atom+xml...).
    this.#suffixes = spec === true;
  }

  /** Whether a Content-Type value (parameters ignored) is one to compress. */
  compressible(contentType: string | null): boolean {
    if (contentType === null) return false;
    const semi = contentType.indexOf(';');
    const type = (semi < 0 ? contentType : contentType.slice(0, semi)).trim().toLowerCase();
    if (this.#exact.has(type)) return true;
    for (const family of this.#families) if (type.startsWith(family)) return true;
    return this.#suffixes && (type.endsWith('+json') || type.endsWith('+xml'));
  }
}

/**
 * One response body on its way through gzip or brotli to the client. `onInputDrain`: the encoder
 * takes input again (the exchange resumes the backend).
 */
export class ResponseEncoder {
  readonly #stream: Gzip | BrotliCompress;
  readonly #client: ClientSide;
  #outputPaused = false;

  constructor(encoding: Encoding, client: ClientSide, onInputDrain: () => void) {
    this.#client = client;
    // Brotli's default quality (11) costs far more CPU than it saves bytes on the fly; 4 is what edges use.
    this.#stream = encoding === 'br' ? createBrotliCompress({ params: { [constants.BROTLI_PARAM_QUALITY]: 4 } }) : createGzip();
    this.#stream.on('data', (out: Buffer) => {
      if (!client.write(out)) {
        this.#outputPaused = true;
        this.#stream.pause();
      }
    });
    this.#stream.on('drain', onInputDrain);
    this.#stream.on('error', () => client.cut());
  }

  /** Body bytes in; false when the encoder's input is full (pause the backend until onInputDrain). */
  write(data: Buffer): boolean {
    return this.#stream.write(data);
  }

  /** The client drained: the encoder may hand out more. */
  clientDrained(): void {
    if (this.#outputPaused) {
      this.#outputPaused = false;
      this.#stream.resume();
    }
  }

  /** No more input: `done` runs once every encoded byte went to the client. */
  end(done: () => void): void {
    this.#stream.once('end', done);
    this.#stream.end();
  }

  destroy(): void {
    this.#stream.destroy();
  }
}
