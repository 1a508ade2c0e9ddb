// The cluster-wide lock on one name's order: an etcd key created only if absent
// (create revision 0) on a lease of --acme-lock-ttl, kept alive while the order
// runs. A router that dies stops its keepalives, the lease expires, the key goes
// with it, and another router takes the name over; its challenges were on the
// same lease and go too. The key's value names the holder, so every write the
// order makes at the end is conditional on still holding it.
import { randomBytes } from 'node:crypto';
import type { Etcd3, Lease } from 'etcd3';

export class OrderLock {
  readonly key: string;
  /** "<node>:<pid>:<nonce>", unique to this acquisition. */
  readonly holder: string;
  readonly lease: Lease;
  #lost: Error | null = null;

  private constructor(key: string, holder: string, lease: Lease) {
    this.key = key;
    this.holder = holder;
    this.lease = lease;
    lease.on('lost', (err: Error) => { this.#lost = err; });
  }

  /** Takes the lock, or returns the current holder's name when another router has it. */
  static async acquire(etcd: Etcd3, key: string, routerId: string, ttlMs: number): Promise<OrderLock | { readonly heldBy: string }> {
    const holder = `${routerId}:${randomBytes(4).toString('hex')}`;
    const lease = etcd.lease(Math.max(1, Math.round(ttlMs / 1000)), { autoKeepAlive: true });
    lease.on('lost', () => {});
    try {
      const id = await lease.grant();
      const result = await etcd.if(key, 'Create', '==', 0)
        .then(etcd.put(key).value(holder).lease(id))
        .else(etcd.get(key))
        .commit();
      if (result.succeeded) return new OrderLock(key, holder, lease);
      await lease.revoke().catch(() => {});
      const current = result.responses[0]?.response_range?.kvs[0]?.value.toString();
      return { heldBy: current ?? 'unknown' };
    } catch (err) {
      await lease.revoke().catch(() => {});
      throw err;
    }
  }

  /** Throws when the lease was lost (etcd unreachable past the TTL): another router may own the name now. */
  check(): void {
    if (this.#lost !== null) throw new Error(`lost the order lock ${this.key}: ${this.#lost.message}`);
  }

  /** Ends the lease: the lock and the challenges put on it are deleted at once. */
  async release(): Promise<void> {
    await this.lease.revoke().catch(() => {});
  }
}
