// What the rollout needs to know from etcd: is instance <i> of <app> announced,
// and at which address. Reads only; the announcers write.
import type { Etcd3 } from 'etcd3';
import { parseBackendValue, type BackendSpec } from '../router/etcd/route-keys.ts';

function deadline(): Date {
  return new Date(Date.now() + 2000);
}

export interface Announcement {
  readonly backend: BackendSpec;
  /** etcd revision that created the key: tells a fresh announcement from a stale key of an earlier instance with the same name. */
  readonly createRevision: bigint;
}

export interface Announcements {
  /** The announcement, null when the key is absent (or unusable); throws when etcd does not answer. */
  get(app: string, instance: string): Promise<Announcement | null>;
  /** etcd's current revision. */
  revision(): Promise<bigint>;
}

export class EtcdAnnouncements implements Announcements {
  readonly #client: Etcd3;
  readonly #prefix: string;

  constructor(client: Etcd3, prefix: string) {
    this.#client = client;
    this.#prefix = prefix;
  }

  async get(app: string, instance: string): Promise<Announcement | null> {
    const res = await this.#client.get(`${this.#prefix}/services/${app}/${instance}`)
      .options({ deadline: deadline() })
      .exec();
    const kv = res.kvs[0];
    if (kv === undefined) return null;
    const backend = parseBackendValue(kv.value.toString());
    // A value the router would skip is not an announcement the rollout can trust.
    return typeof backend === 'string' ? null : { backend, createRevision: BigInt(kv.create_revision) };
  }

  async revision(): Promise<bigint> {
    const res = await this.#client.get(`${this.#prefix}/services/`).options({ deadline: deadline() }).exec();
    return BigInt(res.header.revision);
  }
}
