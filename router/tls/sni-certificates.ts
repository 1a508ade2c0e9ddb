// The certificates a worker's HTTPS listener serves, selected per handshake by
// SNI: the exact hostname, then a `*.domain` wildcard one label up, then the
// default certificate. Certificates arrive as table changes (already checked by
// the primary); each gets its own secure context, built once. A change affects
// new handshakes only: established connections keep the context they began with.
//
// When several certificates cover one name, the one that expires last serves it
// (a renewal put under a new key takes over at once), ties broken by name.
// The default is the certificate named "default" (etcd `/tls/default`), else
// the first --cert/--key pair; with neither, unknown names fail the handshake.
import { createSecureContext, type SecureContext } from 'node:tls';
import type { TableChange } from '../etcd/route-keys.ts';
import type { CertificateSpec } from './tls-certificate.ts';
import { TLS_POLICY } from './tls-policy.ts';

interface Entry {
  readonly name: string;
  readonly spec: CertificateSpec;
  readonly context: SecureContext;
}

/** Name prefix of certificates loaded from --cert/--key files (etcd names cannot contain '/'). */
export const FILE_CERTIFICATE_PREFIX = 'file:';
const DEFAULT_NAME = 'default';

export class CertificateStore {
  readonly #entries = new Map<string, Entry>();
  /** Every certificate covering a name (exact or `*.domain`). */
  readonly #candidates = new Map<string, Entry[]>();
  /** The winner per name: what the SNI callback reads. */
  readonly #selected = new Map<string, SecureContext>();
  #default: Entry | null = null;
  readonly #onDefaultChange: (spec: CertificateSpec | null) => void;

  /** `onDefaultChange` updates the listener's own context: the one clients without SNI get. */
  constructor(onDefaultChange: (spec: CertificateSpec | null) => void = () => {}) {
    this.#onDefaultChange = onDefaultChange;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Applies certificate changes; other kinds are skipped. A context that cannot be built keeps the previous one. */
  apply(changes: readonly TableChange[]): string[] {
    const refused: string[] = [];
    let touched = false;
    for (const change of changes) {
      if (change.kind !== 'certificate') continue;
      const previous = this.#entries.get(change.name);
      if (change.certificate === null) {
        if (previous === undefined) continue;
        this.#entries.delete(change.name);
        this.#unindex(previous);
      } else {
        let context: SecureContext;
        try {
          context = createSecureContext({ ...TLS_POLICY, cert: change.certificate.cert, key: change.certificate.key });
        } catch (err) {
          refused.push(`${change.key}: ${(err as Error).message}`);
          continue;
        }
        const entry: Entry = { name: change.name, spec: change.certificate, context };
        this.#entries.set(change.name, entry);
        if (previous !== undefined) this.#unindex(previous);
        this.#index(entry);
      }
      touched = true;
    }
    if (touched) this.#chooseDefault();
    return refused;
  }

  /** The context for a client's SNI name (exact, then wildcard, then default); undefined = the listener's own. */
  select(servername: string): SecureContext | undefined {
    let name = servername.toLowerCase();
    if (name.charCodeAt(name.length - 1) === 46 /* . */) name = name.slice(0, -1);
    const exact = this.#selected.get(name);
    if (exact !== undefined) return exact;
    const dot = name.indexOf('.');
    if (dot > 0) {
      const wildcard = this.#selected.get(`*${name.slice(dot)}`);
      if (wildcard !== undefined) return wildcard;
    }
    return this.#default?.context;
  }

  #index(entry: Entry): void {
    for (const host of entry.spec.hosts) {
      const list = [...(this.#candidates.get(host) ?? []), entry];
      list.sort((a, b) => b.spec.notAfter - a.spec.notAfter || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
      this.#candidates.set(host, list);
      this.#selected.set(host, list[0].context);
    }
  }

  #unindex(entry: Entry): void {
    for (const host of entry.spec.hosts) {
      const list = (this.#candidates.get(host) ?? []).filter((e) => e !== entry);
      if (list.length === 0) {
        this.#candidates.delete(host);
        this.#selected.delete(host);
      } else {
        this.#candidates.set(host, list);
        this.#selected.set(host, list[0].context);
      }
    }
  }

  #chooseDefault(): void {
    let chosen = this.#entries.get(DEFAULT_NAME) ?? null;
    if (chosen === null) {
      for (const entry of this.#entries.values()) {
        if (entry.name.startsWith(FILE_CERTIFICATE_PREFIX)) {
          chosen = entry;
          break;
        }
      }
    }
    if (chosen === this.#default) return;
    this.#default = chosen;
    this.#onDefaultChange(chosen?.spec ?? null);
  }
}
