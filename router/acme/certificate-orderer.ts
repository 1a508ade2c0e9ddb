// One order of one name, by the router holding its lock: account, order,
// HTTP-01 challenge put in etcd (on the lock's lease) and seen by this router's
// own watch before the directory is told to validate, so whichever router the
// directory reaches answers; then a new key, the CSR, the certificate, checked
// as every /tls/ value is. Publishing is one etcd transaction conditional on
// still holding the lock: a router that lost its lease mid-order writes nothing.
import acme from 'acme-client';
import type { Etcd3 } from 'etcd3';
import { parseCertificate, type CertificateSpec } from '../tls/tls-certificate.ts';
import type { AcmeAccount } from './account.ts';
import type { AcmeKeys } from './acme-keys.ts';
import { acmeStateJSON, type AcmeState } from './acme-state.ts';
import type { OrderLock } from './order-lock.ts';

export interface OrderContext {
  readonly etcd: Etcd3;
  readonly keys: AcmeKeys;
  readonly account: AcmeAccount;
  readonly directory: string;
  readonly email: string | null;
  /** Resolves once this router's watch delivered the challenge (so etcd has it and the watches carry it). */
  readonly challengeSeen: (token: string, timeoutMs: number) => Promise<void>;
}

/** How long a challenge may take to come back through this router's own watch. */
const CHALLENGE_PROPAGATION_TIMEOUT = 10_000;

export async function orderCertificate(ctx: OrderContext, host: string, lock: OrderLock): Promise<CertificateSpec> {
  const client = await ctx.account.client(ctx.directory, ctx.email);
  lock.check();
  const order = await client.createOrder({ identifiers: [{ type: 'dns', value: host }] });
  for (const authz of await client.getAuthorizations(order)) {
    if (authz.status === 'valid') continue;
    const challenge = authz.challenges.find((c) => c.type === 'http-01');
    if (challenge === undefined) throw new Error(`the directory offers no http-01 challenge for ${host} (offered: ${authz.challenges.map((c) => c.type).join(', ')})`);
    const key = ctx.keys.challenge(challenge.token);
    await lock.lease.put(key).value(await client.getChallengeKeyAuthorization(challenge));
    try {
      await ctx.challengeSeen(challenge.token, CHALLENGE_PROPAGATION_TIMEOUT);
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
