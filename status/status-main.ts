// Runs `tug status`: reads the cluster from etcd (again after RECHECK_DELAY when
// a router has not applied the latest change yet, so a change made a moment ago
// is not reported as a stale router), prints it, and sets the exit code:
//   0  every router in sync and healthy, no certificate expiring within 21 days
//   1  something to look at: a stale or unhealthy router, an expiring or unreadable certificate, an invalid key,
//      a user list that routes refer to and that has no valid value
//   3  etcd did not answer
import { createEtcdClient } from '../common/etcd-client.ts';
import { readClusterStatus, type ClusterStatus } from './cluster-status.ts';
import type { StatusConfig } from './status-config.ts';
import { renderStatus } from './status-report.ts';

const RECHECK_DELAY = 2000;

export async function runStatus(config: StatusConfig): Promise<void> {
  const client = createEtcdClient(config.etcd);
  let status: ClusterStatus;
  try {
    status = await readClusterStatus(client, config.etcdPrefix);
    if (status.routers.some((r) => r.sync !== 'in sync')) {
      await new Promise((resolve) => setTimeout(resolve, RECHECK_DELAY));
      status = await readClusterStatus(client, config.etcdPrefix);
    }
  } catch (err) {
    process.stderr.write(`tug status: etcd ${config.etcd.join(',')} did not answer: ${(err as Error).message}\n`);
    process.exitCode = 3;
    return;
  } finally {
    client.close();
  }
  process.stdout.write(config.json ? `${JSON.stringify(status, null, 2)}\n` : renderStatus(status, config.etcd));
  const flagged = status.routers.some((r) => r.sync === 'stale' || !r.healthy)
    || status.certificates.some((c) => c.expiring || c.error !== undefined)
    || status.invalid.length > 0
    || status.userLists.some((l) => l.userCount === null && l.routes.length > 0);
  process.exitCode = flagged ? 1 : 0;
}
