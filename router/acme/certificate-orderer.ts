// One order of one name, by the router holding its lock: account, order,
// challenge put in etcd (on the lock's lease) and seen by this router's own
// watch before the directory is told to validate, so whichever router the
// directory reaches answers: HTTP-01's key authorization under
// /acme/challenges/<token>, or TLS-ALPN-01's validation certificate (made by
// acme-client: RFC 8737's acmeIdentifier extension) under /acme/alpn/<host>;
// deleted once the directory has decided. Then a new key, the CSR, the certificate, checked
// as every /tls/ value is. Publishing is one etcd transaction conditional on
// still holding the lock: a router that lost its lease mid-order writes nothing.
import acme from 'acme-client';
import type { Etcd3 } from 'etcd3';
import { parseCertificate, type CertificateSpec } from '../tls/tls-certificate.ts';
import type { AcmeChallengeType } from '../config.ts';
import type { AcmeAccount } from './account.ts';
import { parseAlpnCertificate } from './alpn-challenge-store.ts';
import type { AcmeKeys } from './acme-keys.ts';
import { acmeStateJSON, type AcmeState } from './acme-state.ts';
import type { OrderLock } from './order-lock.ts';

export interface OrderContext {
  readonly etcd: Etcd3;
  readonly keys: AcmeKeys;
  readonly account: AcmeAccount;
  readonly directory: string;
  readonly email: string | null;
  readonly challengeType: AcmeChallengeType;
  /** Resolves once this router's watch delivered `value` under `key` (so etcd has it and the watches carry it). */
  readonly challengeSeen: (key: string, value: string, timeoutMs: number) => Promise<void>;
}

/** How long a challenge may take to come back through this router's own watch. */
const CHALLENGE_PROPAGATION_TIMEOUT = 10_000;

export async function orderCertificate(ctx: OrderContext, host: string, lock: OrderLock): Promise<CertificateSpec> {
  const client = await ctx.account.client(ctx.directory, ctx.email);
  lock.check();
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: host }] });
  for (const authz of await client.getAuthorizations(order)) {
    if (authz.status === 'valid') continue;
    const challenge = authz.challenges.find((c) => c.type === ctx.challengeType);
    if (challenge === undefined) throw new Error(`the directory offers no ${ctx.challengeType} challenge for ${host} (offered: ${authz.challenges.map((c) => c.type).join(', ')})`);
    const keyAuthorization = await client.getChallengeKeyAuthorization(challenge);
    const [key, value, seen] = ctx.challengeType === 'http-01'
      ? [ctx.keys.challenge(challenge.token), keyAuthorization, keyAuthorization]
      : await alpnChallenge(ctx, host, authz, keyAuthorization);
    await lock.lease.put(key).value(value);
    try {
      await ctx.challengeSeen(key, seen, CHALLENGE_PROPAGATION_TIMEOUT);
      lock.check();
      await client.completeChallenge(challenge);
      await client.waitForValidStatus(challenge);
    } finally {
      await ctx.etcd.delete().key(key).catch(() => {});
    }
  }
  lock.check();
  const [privateKey, csr] = await acme.crypto.createCsr({ commonName: host, altNames: [host] }, await acme.crypto.createPrivateEcdsaKey('P-256'));
  const finalized = await client.finalizeOrder(order, csr);
  const chain = await client.getCertificate(finalized);
  const spec = parseCertificate(chain, privateKey.toString());
  if (typeof spec === 'string') throw new Error(`the directory's certificate is unusable: ${spec}`);
  if (!spec.hosts.includes(host)) throw new Error(`the directory's certificate does not cover ${host} (it covers ${spec.hosts.join(', ')})`);
  return spec;
}

/** The /acme/alpn/<host> key, its value, and the certificate as the watch will deliver it (checked as every router checks it). */
async function alpnChallenge(ctx: OrderContext, host: string, authz: acme.Authorization, keyAuthorization: string): Promise<[string, string, string]> {
  const [key, cert] = await acme.crypto.createAlpnCertificate(authz, keyAuthorization, await acme.crypto.createPrivateEcdsaKey('P-256'));
  const value = JSON.stringify({ cert: cert.toString(), key: key.toString() });
  const checked = parseAlpnCertificate(host, value);
  if (typeof checked === 'string') throw new Error(`the TLS-ALPN-01 validation certificate made for ${host} is unusable: ${checked}`);
  return [ctx.keys.alpn(host), value, checked.cert];
}

/** Puts the certificate under /tls/acme-<host> and its state, only while `lock` is held; false when it is not. */
export async function publishCertificate(ctx: OrderContext, host: string, lock: OrderLock, spec: CertificateSpec, state: AcmeState): Promise<boolean> {
  const result = await ctx.etcd.if(lock.key, 'Value', '==', lock.holder)
    .then(
      ctx.etcd.put(ctx.keys.certificate(host)).value(JSON.stringify({ cert: spec.cert, key: spec.key })),
      ctx.etcd.put(ctx.keys.state(host)).value(JSON.stringify(acmeStateJSON(state))),
    )
    .commit();
  return result.succeeded;
}

/** Puts a name's state, only while `lock` is held (the next holder owns the state otherwise). */
export async function writeState(ctx: OrderContext, host: string, lock: OrderLock, state: AcmeState): Promise<void> {
  await ctx.etcd.if(lock.key, 'Value', '==', lock.holder)
    .then(ctx.etcd.put(ctx.keys.state(host)).value(JSON.stringify(acmeStateJSON(state))))
    .commit();
}
