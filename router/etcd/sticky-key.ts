// The cluster's key for sticky-session cookies, at `<prefix>/cluster/sticky-key`
// (base64 of 32 random bytes). The first router to need it creates it with a
// compare-and-put (create only if absent), so every router of the cluster signs
// and checks cookies with the same key and a cookie set by one is honoured by all.
// Restrict who can read it (etcd auth): whoever has it can pin clients to any
// backend address of a sticky route.
import { randomBytes } from 'node:crypto';
import type { Etcd3 } from 'etcd3';

const MIN_KEY_BYTES = 16;

export function stickyKeyName(etcdPrefix: string): string {
  return `${etcdPrefix.replace(/\/+$/, '')}/cluster/sticky-key`;
}

/** Reads the key, creating it when absent; a reason string when the stored value is unusable. */
export async function ensureStickyKey(etcd: Etcd3, etcdPrefix: string): Promise<Buffer | string> {
  const name = stickyKeyName(etcdPrefix);
  const created = randomBytes(32).toString('base64');
  const result = await etcd.if(name, 'Create', '==', 0)
    .then(etcd.put(name).value(created))
    .else(etcd.get(name))
    .commit();
  const stored = result.succeeded ? created : result.responses[0]?.response_range?.kvs[0]?.value.toString() ?? '';
  const key = Buffer.from(stored.trim(), 'base64');
  if (key.length < MIN_KEY_BYTES) return `${name}: expected base64 of at least ${MIN_KEY_BYTES} random bytes`;
  return key;
}
