// `allow` / `deny`: CIDR lists (IPv4 and IPv6) matched against the client's
// address, which is the TCP peer of the router's socket. Behind the Azure load
// balancer that is the real client: it passes TCP through without proxying
// (no SNAT of the source for inbound rules), so no X-Forwarded-For is trusted
// or needed. IPv4-mapped IPv6 peers (a dual-stack listener) match IPv4 rules.
import { BlockList, isIP } from 'node:net';

/** Validates a list of CIDRs (or bare addresses) under `key`; a reason naming the key and entry. */
export function parseCidrList(key: string, value: unknown): string[] | string {
  if (!Array.isArray(value) || value.length === 0 || !value.every((v) => typeof v === 'string')) return `"${key}" must be a non-empty array of CIDRs like "10.0.0.0/8" or "2001:db8::/32"`;
  for (const entry of value as string[]) {
    if (cidr(entry) === null) return `"${key}": ${JSON.stringify(entry)} is not an IPv4 or IPv6 address or CIDR`;
  }
  return value as string[];
}

function cidr(entry: string): { address: string; prefix: number; type: 'ipv4' | 'ipv6' } | null {
  const slash = entry.indexOf('/');
  const address = slash < 0 ? entry : entry.slice(0, slash);
  const version = isIP(address);
  if (version === 0) return null;
  const max = version === 4 ? 32 : 128;
  const prefix = slash < 0 ? max : Number(entry.slice(slash + 1));
  if (!/^\d{1,3}$/.test(slash < 0 ? String(max) : entry.slice(slash + 1)) || prefix > max) return null;
  return { address, prefix, type: version === 4 ? 'ipv4' : 'ipv6' };
}

function blockList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const c = cidr(entry)!;
    list.addSubnet(c.address, c.prefix, c.type);
  }
  return list;
}

export class IpFilter {
  readonly #allow: BlockList | null;
  readonly #deny: BlockList | null;

  constructor(allow: readonly string[] | null, deny: readonly string[] | null) {
    this.#allow = allow === null ? null : blockList(allow);
    this.#deny = deny === null ? null : blockList(deny);
  }

  /** Whether a peer address may use the route: not denied, and allowed when there is an allow list. */
  admits(address: string): boolean {
    if (address === '') return false;
    const type = address.includes(':') ? 'ipv6' : 'ipv4';
    if (this.#deny !== null && this.#deny.check(address, type)) return false;
    return this.#allow === null || this.#allow.check(address, type);
  }
}
