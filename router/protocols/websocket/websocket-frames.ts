// Just enough of RFC 6455 framing for the router to end a WebSocket cleanly:
// it follows frame boundaries in the backend→client stream (headers are parsed,
// payloads skipped, nothing is copied or unmasked) so that a Close frame can be
// put between two frames, never inside one. It never changes the bytes it sees.

/** Follows frame boundaries in one direction of a WebSocket byte stream. */
export class FrameBoundaryTracker {
  readonly #header = Buffer.alloc(14);
  #headerLength = 0;
  #payloadLeft = 0;
  /** Called once, after the next chunk that ends on a frame boundary. */
  onBoundary: (() => void) | null = null;

  /** No frame is partly sent: a new frame may start here. */
  get atBoundary(): boolean {
    return this.#headerLength === 0 && this.#payloadLeft === 0;
  }

  observe(chunk: Buffer): void {
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (this.#payloadLeft > 0) {
        const take = Math.min(this.#payloadLeft, n - i);
        this.#payloadLeft -= take;
        i += take;
        continue;
      }
      this.#header[this.#headerLength++] = chunk[i++];
      const total = headerLength(this.#header, this.#headerLength);
      if (total === this.#headerLength) {
        this.#payloadLeft = payloadLength(this.#header);
        this.#headerLength = 0;
      }
    }
    if (this.onBoundary !== null && this.atBoundary) {
      const callback = this.onBoundary;
      this.onBoundary = null;
      callback();
    }
  }
}

/** The header's full length once its first two bytes are known, else -1. */
function headerLength(header: Buffer, have: number): number {
  if (have < 2) return -1;
  const len7 = header[1] & 0x7f;
  return 2 + (len7 === 126 ? 2 : len7 === 127 ? 8 : 0) + ((header[1] & 0x80) !== 0 ? 4 : 0);
}

function payloadLength(header: Buffer): number {
  const len7 = header[1] & 0x7f;
  if (len7 < 126) return len7;
  if (len7 === 126) return header.readUInt16BE(2);
  return header.readUInt32BE(2) * 2 ** 32 + header.readUInt32BE(6);
}

/** A server-to-client Close frame (unmasked) with a status code and a short reason. */
export function closeFrame(code: number, reason: string): Buffer {
  const text = Buffer.from(reason.slice(0, 120), 'utf8').subarray(0, 123);
  const frame = Buffer.alloc(4 + text.length);
  frame[0] = 0x88; // FIN + opcode 8 (Close)
  frame[1] = 2 + text.length;
  frame.writeUInt16BE(code, 2);
  text.copy(frame, 4);
  return frame;
}

/** 1001: the endpoint is going away (RFC 6455 §7.4.1). */
export const GOING_AWAY = 1001;
