// The chunked transfer coding (RFC 9112 §7.1) as a byte-at-a-time state
// machine: it validates every chunk-size line, extension and trailer strictly
// and finds where the message ends, so that the bytes can be forwarded as they
// came (or, for an HTTP/1.0 client, as the bare data spans). Same verdict for
// any split of the input into chunks.
import { CR, FIELD_VALUE, LF, TCHAR } from './request-head.ts';

const SIZE_START = 0;
const SIZE = 1;
const SIZE_LF = 3;
const DATA = 4;
const DATA_CR = 5;
const DATA_LF = 6;
const TRAILER_START = 7;
const TRAILER_NAME = 8;
const TRAILER_VALUE = 9;
const TRAILER_LF = 10;
const END_LF = 11;
const DONE = 12;
// Chunk extensions (RFC 9112 §7.1.1), without the optional whitespace (stricter than the grammar,
// never laxer): `;name`, `;name=token`, `;name="quoted"`, repeated.
const EXT_NAME_START = 13;
const EXT_NAME = 14;
const EXT_VALUE_START = 15;
const EXT_TOKEN = 16;
const EXT_QUOTED = 17;
const EXT_QUOTED_PAIR = 18;
const EXT_AFTER_QUOTED = 19;

/** qdtext (RFC 9110 §5.6.4) without obs-text: HTAB, SP, VCHAR but '"' and '\\'. */
const QDTEXT = new Uint8Array(256);
QDTEXT[9] = 1;
for (let c = 0x20; c < 0x7f; c++) QDTEXT[c] = c === 0x22 || c === 0x5c ? 0 : 1;

/**
 * Fields a trailer may never carry (RFC 9110 §6.5.1): framing and routing. A recipient may not merge
 * them, but a backend that does would reframe the message; llhttp's strict mode refuses them too.
 */
const FORBIDDEN_TRAILERS = ['content-length', 'transfer-encoding', 'host'];

/** feed() results besides a message-end offset. */
export const NEED_MORE = -1;
export const INVALID = -2;

const MAX_SIZE_DIGITS = 13; // 2^52: far beyond any real chunk
const MAX_LINE = 4096; // chunk-size line with extensions, or one trailer field
const MAX_TRAILERS = 16 * 1024;

const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[48 + c] = c;
for (let c = 0; c < 6; c++) {
  HEX[65 + c] = 10 + c;
  HEX[97 + c] = 10 + c;
}

/** Receives the data bytes of the chunks (no framing), for a recipient that cannot take chunked. */
export type DataSink = (buf: Buffer, start: number, end: number) => void;

export class ChunkedDecoder {
  #state = SIZE_START;
  #remaining = 0;
  #digits = 0;
  #line = 0;
  #trailerBytes = 0;
  /** Which FORBIDDEN_TRAILERS the trailer name read so far still matches (a bit each). */
  #forbidden = 0;
  /** Data bytes (without framing) seen so far. */
  dataBytes = 0;
  /** Why the input was refused, after INVALID. */
  error = '';

  reset(): void {
    this.#state = SIZE_START;
    this.#remaining = 0;
    this.#digits = 0;
    this.#line = 0;
    this.#trailerBytes = 0;
    this.dataBytes = 0;
    this.error = '';
  }

  get done(): boolean {
    return this.#state === DONE;
  }

  /**
   * Reads buf[start, end). Returns the offset just after the message's last byte when it ends there,
   * NEED_MORE when all of it belonged to the message, or INVALID.
   */
  feed(buf: Buffer, start: number, end: number, sink: DataSink | null): number {
    let i = start;
    while (i < end) {
      const c = buf[i];
      switch (this.#state) {
        case DATA: {
          const n = Math.min(this.#remaining, end - i);
          if (sink !== null) sink(buf, i, i + n);
          this.dataBytes += n;
          this.#remaining -= n;
          i += n;
          if (this.#remaining === 0) this.#state = DATA_CR;
          continue;
        }
        case SIZE_START:
        case SIZE: {
          const d = HEX[c];
          if (d >= 0) {
            if (++this.#digits > MAX_SIZE_DIGITS) return this.#fail('chunk size too large');
            this.#remaining = this.#remaining * 16 + d;
            this.#state = SIZE;
          } else if (this.#state === SIZE_START) {
            return this.#fail('invalid chunk size');
          } else if (c === 59 /* ; */) {
            this.#state = EXT_NAME_START;
            this.#line = 0;
          } else if (c === CR) {
            this.#state = SIZE_LF;
          } else {
            return this.#fail('invalid chunk size');
          }
          break;
        }
        case EXT_NAME_START:
        case EXT_NAME:
        case EXT_VALUE_START:
        case EXT_TOKEN:
        case EXT_QUOTED:
        case EXT_QUOTED_PAIR:
        case EXT_AFTER_QUOTED:
          if (++this.#line > MAX_LINE) return this.#fail('chunk extension too long');
          if (!this.#extension(c)) return this.#fail('invalid chunk extension');
          break;
        case SIZE_LF:
          if (c !== LF) return this.#fail('bare CR in a chunk-size line');
          this.#digits = 0;
          this.#state = this.#remaining === 0 ? TRAILER_START : DATA;
          break;
        case DATA_CR:
          if (c !== CR) return this.#fail('chunk data not followed by CRLF');
          this.#state = DATA_LF;
          break;
        case DATA_LF:
          if (c !== LF) return this.#fail('chunk data not followed by CRLF');
          this.#state = SIZE_START;
          break;
        case TRAILER_START:
          if (c === CR) {
            this.#state = END_LF;
          } else if (TCHAR[c] === 1) {
            this.#state = TRAILER_NAME;
            this.#line = 1;
            this.#forbidden = matchForbidden((1 << FORBIDDEN_TRAILERS.length) - 1, 0, c);
          } else {
            return this.#fail('invalid trailer field');
          }
          break;
        case TRAILER_NAME:
          if (c === 58 /* : */) {
            if (isForbidden(this.#forbidden, this.#line)) return this.#fail('framing or Host field in the trailers');
            this.#state = TRAILER_VALUE;
          } else if (TCHAR[c] === 0) {
            return this.#fail('invalid trailer field name');
          } else {
            if (this.#forbidden !== 0) this.#forbidden = matchForbidden(this.#forbidden, this.#line, c);
            if (++this.#line > MAX_LINE) return this.#fail('trailer field too long');
          }
          break;
        case TRAILER_VALUE:
          if (c === CR) {
            this.#state = TRAILER_LF;
          } else if (FIELD_VALUE[c] === 0) {
            return this.#fail('invalid trailer field value');
          } else if (++this.#line > MAX_LINE) {
            return this.#fail('trailer field too long');
          }
          break;
        case TRAILER_LF:
          if (c !== LF) return this.#fail('bare CR in a trailer field');
          this.#trailerBytes += this.#line;
          if (this.#trailerBytes > MAX_TRAILERS) return this.#fail('trailers too large');
          this.#state = TRAILER_START;
          break;
        case END_LF:
          if (c !== LF) return this.#fail('bare CR after the last chunk');
          this.#state = DONE;
          return i + 1;
        case DONE:
          return i;
      }
      i++;
    }
    return NEED_MORE;
  }

  /** One byte of a chunk extension; false when it breaks the grammar. */
  #extension(c: number): boolean {
    switch (this.#state) {
      case EXT_NAME_START:
        if (TCHAR[c] === 0) return false;
        this.#state = EXT_NAME;
        return true;
      case EXT_NAME:
      case EXT_TOKEN:
        if (TCHAR[c] === 1) return true;
        if (c === 59 /* ; */) this.#state = EXT_NAME_START;
        else if (c === 61 /* = */ && this.#state === EXT_NAME) this.#state = EXT_VALUE_START;
        else if (c === CR) this.#state = SIZE_LF;
        else return false;
        return true;
      case EXT_VALUE_START:
        if (TCHAR[c] === 1) this.#state = EXT_TOKEN;
        else if (c === 34 /* " */) this.#state = EXT_QUOTED;
        else return false;
        return true;
      case EXT_QUOTED:
        if (c === 34) this.#state = EXT_AFTER_QUOTED;
        else if (c === 92 /* \ */) this.#state = EXT_QUOTED_PAIR;
        else if (QDTEXT[c] === 0) return false;
        return true;
      case EXT_QUOTED_PAIR:
        if (c !== 9 && (c < 0x20 || c > 0x7e)) return false;
        this.#state = EXT_QUOTED;
        return true;
      case EXT_AFTER_QUOTED:
        if (c === 59) this.#state = EXT_NAME_START;
        else if (c === CR) this.#state = SIZE_LF;
        else return false;
        return true;
    }
    return false;
  }

  #fail(reason: string): number {
    this.error = reason;
    return INVALID;
  }
}

/** The candidates of `mask` whose byte at `index` is `c` (case-insensitive). */
function matchForbidden(mask: number, index: number, c: number): number {
  let out = 0;
  for (let k = 0; k < FORBIDDEN_TRAILERS.length; k++) {
    if ((mask & (1 << k)) !== 0 && FORBIDDEN_TRAILERS[k].charCodeAt(index) === (c | 0x20)) out |= 1 << k;
  }
  return out;
}

/** Whether a name of `length` bytes that still matches `mask` is one of FORBIDDEN_TRAILERS. */
function isForbidden(mask: number, length: number): boolean {
  for (let k = 0; k < FORBIDDEN_TRAILERS.length; k++) if ((mask & (1 << k)) !== 0 && FORBIDDEN_TRAILERS[k].length === length) return true;
  return false;
}
