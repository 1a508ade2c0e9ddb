// The cluster's one ACME account: its private key lives in etcd (/acme/account)
// so every router orders as the same account. The first router that needs it
// creates the key and puts it only if the key is still absent; a router that
// loses that race uses the winner's. Each router looks its account up once per
// directory (newAccount with onlyReturnExisting), registering it only when the
// directory does not know the key yet, and keeps the account URL in memory.
import acme from 'acme-client';
import type { Etcd3 } from 'etcd3';

export class AcmeAccount {
  readonly #etcd: Etcd3;
  readonly #key: string;
  #cached: string | null = null;
  /** directory URL → account URL */
  readonly #accountUrls = new Map<string, string>();

  constructor(etcd: Etcd3, key: string) {
    this.#etcd = etcd;
    this.#key = key;
  }

  /** The account's private key (PEM), made and stored on first use. */
  async privateKey(): Promise<string> {
    if (this.#cached !== null) return this.#cached;
    const existing = await this.#etcd.get(this.#key).string();
    if (existing !== null) return (this.#cached = parseAccount(existing));
    const created = (await acme.crypto.createPrivateEcdsaKey('P-256')).toString();
    const result = await this.#etcd.if(this.#key, 'Create', '==', 0)
      .then(this.#etcd.put(this.#key).value(JSON.stringify({ key: created })))
      .else(this.#etcd.get(this.#key))
      .commit();
    const stored = result.succeeded ? created : parseAccount(result.responses[0]?.response_range?.kvs[0]?.value.toString() ?? '');
    return (this.#cached = stored);
  }

  /** A client for the directory as this account (registered, terms agreed). */
  async client(directoryUrl: string, email: string | null): Promise<acme.Client> {
    const known = this.#accountUrls.get(directoryUrl);
    const client = new acme.Client({
      directoryUrl,
      accountKey: await this.privateKey(),
      ...(known === undefined ? {} : { accountUrl: known }),
      // Polls of a pending challenge or order: 0.5 s, doubling to 10 s, about a minute and a half in all.
      backoffAttempts: 12,
      backoffMin: 500,
      backoffMax: 10_000,
    });
    if (known !== undefined) return client;
    try {
      // acme-client would turn a second registration of a known key into an empty update, which directories refuse.
      await client.createAccount({ onlyReturnExisting: true });
    } catch {
      await client.createAccount({ termsOfServiceAgreed: true, ...(email === null ? {} : { contact: [`mailto:${email}`] }) });
    }
    this.#accountUrls.set(directoryUrl, client.getAccountUrl());
    return client;
  }
}

function parseAccount(raw: string): string {
  try {
    const { key } = JSON.parse(raw) as { key?: unknown };
    if (typeof key === 'string' && key.includes('PRIVATE KEY')) return key;
  } catch {
    // fall through
  }
  throw new Error('/acme/account is not {"key": "<PEM private key>"}; delete it to make a new account');
}
