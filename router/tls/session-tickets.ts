// TLS session tickets that keep resuming. A TLS 1.3 client uses a ticket once
// (RFC 8446 §C.4), so a server must send a new ticket on every resumed
// connection, or every other connection is a full handshake. Node's own ticket
// callback never asks OpenSSL to renew (nodejs/node#60847): measured, 50% of
// handshakes resumed. This installs the ticket-key callback Node's secure
// context exposes to JavaScript (the one Node's test-https-resume-after-renew
// uses), which answers "decrypted, renew" so OpenSSL issues a fresh ticket, and
// which also accepts the previous key set for a day after a rotation.
// Key layout, as Node's setTicketKeys: 16 bytes name, 16 HMAC, 16 AES.
import { randomBytes } from 'node:crypto';

interface KeySet {
  readonly name: Buffer;
  readonly hmac: Buffer;
  readonly aes: Buffer;
}

/** The JavaScript side of a secure context, as node:tls keeps it (not in @types/node). */
interface TicketContext {
  enableTicketKeyCallback(): void;
  onticketkeycallback: (name: Buffer, iv: Buffer, encrypt: boolean) => unknown[];
}

function keySet(keys: Buffer): KeySet {
  return { name: keys.subarray(0, 16), hmac: keys.subarray(16, 32), aes: keys.subarray(32, 48) };
}

export class SessionTicketKeys {
  #current: KeySet;
  #previous: KeySet | null = null;

  constructor(keys: Buffer) {
    this.#current = keySet(keys);
  }

  /** New keys from the primary: tickets under the old ones still resume (and are renewed under the new). */
  rotate(keys: Buffer): void {
    const next = keySet(keys);
    if (next.name.equals(this.#current.name)) return;
    this.#previous = this.#current;
    this.#current = next;
  }

  /** Installs the renewing callback on a listener's secure context (again after each setSecureContext). */
  install(server: object): void {
    const context = (server as { _sharedCreds?: { context?: TicketContext } })._sharedCreds?.context;
    if (context === undefined || typeof context.enableTicketKeyCallback !== 'function') {
      throw new Error('this Node.js has no ticket-key callback on its TLS secure context');
    }
    context.enableTicketKeyCallback();
    context.onticketkeycallback = (name, _iv, encrypt) => this.#callback(name, encrypt);
  }

  #callback(name: Buffer, encrypt: boolean): unknown[] {
    const current = this.#current;
    if (encrypt) return [1, current.hmac, current.aes, current.name, randomBytes(16)];
    // 2: decrypted, and issue a new ticket (under the current keys).
    if (name.equals(current.name)) return [2, current.hmac, current.aes];
    const previous = this.#previous;
    if (previous !== null && name.equals(previous.name)) return [2, previous.hmac, previous.aes];
    return [0];
  }
}
