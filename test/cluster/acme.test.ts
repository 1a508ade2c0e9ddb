// ACME on the cluster: three hosts behind the load balancer, pebble in the
// root namespace (playing Let's Encrypt) whose mock DNS gives the test name the
// load balancer's address. pebble validates through the load balancer, so its
// validations land on several hosts, whichever router ordered; every host then
// serves the certificate.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:tls';
import { freePort } from '../helpers/ports.ts';
import { Pebble } from '../helpers/pebble.ts';
import { waitFor } from '../helpers/wait.ts';
import { TugCluster } from '../helpers/cluster/tug-cluster.ts';

/** One verified handshake with SNI `host` at address:port; the authorization error, or null when trusted. */
function verify(address: string, port: number, host: string, ca: string): Promise<string | null> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port, servername: host, ca, rejectUnauthorized: false }, () => {
      resolve(socket.authorized ? null : String(socket.authorizationError));
      socket.end();
    });
    socket.setTimeout(5000, () => socket.destroy(new Error('handshake timed out')));
    socket.on('error', reject);
  });
}

describe('ACME on the cluster behind the load balancer', () => {
  let cluster: TugCluster;
  let pebble: Pebble | undefined;

  before(async () => {
    cluster = await TugCluster.start({
      https: true,
      prepare: async (network) => {
        // The load balancer's port is pebble's validation port: it must be known before pebble starts.
        const lbPort = await freePort(network.rootAddress);
        pebble = await Pebble.start({ httpPort: lbPort, address: network.rootAddress, dnsAnswer: network.rootAddress });
        return { lbPort, routerArgs: ['--acme-directory', pebble.directory, '--acme-ca-file', pebble.caFile, '--acme-lock-ttl', '3s', '--acme-retry', '1s'] };
      },
    });
  });

  after(async () => {
    await cluster?.close();
    await pebble?.close();
  });

  it('orders once, answers the validation through the load balancer on several hosts, and serves the certificate on every host', async () => {
    const host = 'cluster.acme.test';
    const root = await pebble!.root();
    await cluster.etcd.put('/routes/cluster-acme', JSON.stringify({ hosts: [host], service: 'app', acme: true, httpsRedirect: true }));
    for (const node of cluster.nodes) {
      await waitFor(async () => await verify(node.host.address, node.router.httpsPort, host, root).catch((err: Error) => err.message) === null, {
        timeout: 60_000, interval: 250, what: `${node.host.name} to serve a trusted certificate for ${host}`,
      });
    }
    const ordered = cluster.nodes.filter((n) => n.router.logs().some((l) => l.msg === 'ACME certificate issued' && l.host === host));
    assert.equal(ordered.length, 1, 'one order in the cluster');
    const answered = cluster.nodes.filter((n) => n.router.logs().some((l) => l.msg === 'ACME challenge answered' && l.host === host));
    assert.ok(answered.length >= 2, `validations answered on several hosts: ${answered.map((n) => n.host.name)}`);
    for (const node of cluster.nodes) {
      const acme = (await node.router.routes()).acme as { names: Record<string, { status: string }> };
      assert.equal(acme.names[host].status, 'valid');
    }
  });
});
