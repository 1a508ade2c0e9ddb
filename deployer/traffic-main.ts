// Wires `tug deploy split` and `tug deploy canary`: etcd as this machine
// reaches it, the routers to watch, and the outcome mapped to the exit-code
// contract (exit-codes.ts): 3 when a canary rolled back, 4 when restoring failed.
import { createEtcdClient } from '../common/etcd-client.ts';
import { ErrorCodes, TugError } from '../common/errors.ts';
import type { WeightedService } from '../router/etcd/route-keys.ts';
import { runCanary } from './canary.ts';
import type { Print } from './deploy-actions.ts';
import { ExitCodes, type ExitCode } from './exit-codes.ts';
import { describeSplit, readRoute, withServices, writeRoute } from './route-split.ts';
import { registeredRouters } from './router-metrics.ts';
import type { CanaryConfig, TrafficConfig } from './traffic-config.ts';

export async function runSplit(config: TrafficConfig, route: string, services: readonly WeightedService[], print: Print, printError: Print): Promise<ExitCode> {
  const etcd = createEtcdClient(config.etcd);
  try {
    const stored = await readRoute(etcd, config.etcdPrefix, route);
    await writeRoute(etcd, stored, withServices(stored.raw, services));
    print(`split ${route}: ${describeSplit(services.filter((s) => s.weight > 0))}`);
    return ExitCodes.OK;
  } catch (err) {
    return failure(err, printError);
  } finally {
    etcd.close();
  }
}

export async function runCanaryCommand(config: TrafficConfig, route: string, canary: CanaryConfig, print: Print, printError: Print): Promise<ExitCode> {
  const etcd = createEtcdClient(config.etcd);
  try {
    let routers = canary.routers;
    if (routers === null) {
      const found = await registeredRouters(etcd, config.etcdPrefix);
      for (const skipped of found.skipped) printError(`tug deploy: canary: router ${skipped} has no reachable admin address; pass --routers to include it`);
      if (found.urls.length === 0) throw new TugError(ErrorCodes.CONFIG_INVALID, 'no router to read /metrics from: none registered in etcd with a reachable admin address; pass --routers');
      routers = found.urls;
    }
    const outcome = await runCanary(etcd, config.etcdPrefix, route, routers, canary, print);
    switch (outcome.kind) {
      case 'completed':
        return ExitCodes.OK;
      case 'rolled-back':
        printError(`tug deploy: canary rolled back: ${outcome.reason}`);
        return ExitCodes.ROLLED_BACK;
      case 'rollback-failed':
        printError(`tug deploy: canary failed (${outcome.reason}) and restoring the previous split failed: ${outcome.rollbackError}`);
        return ExitCodes.ROLLBACK_FAILED;
    }
  } catch (err) {
    return failure(err, printError);
  } finally {
    etcd.close();
  }
}

function failure(err: unknown, printError: Print): ExitCode {
  printError(`tug deploy: ${err instanceof Error ? err.message : String(err)}`);
  if (err instanceof TugError && err.code === ErrorCodes.CONFIG_INVALID) return ExitCodes.USAGE;
  if (err instanceof TugError) return ExitCodes.FAILED;
  // The etcd client's own errors: etcd did not answer.
  return ExitCodes.UNREACHABLE;
}
