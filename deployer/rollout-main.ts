// Wires `tug deploy rollout`: fleet, etcd (as this machine reaches it), the
// health probe, the rendered templates; maps the outcome to the exit-code contract.
import { createEtcdClient, parseEtcdEndpoints } from '../common/etcd-client.ts';
import { renderAppTemplates } from '../units/render.ts';
import type { UnitsConfig } from '../units/units-config.ts';
import { EtcdAnnouncements } from './announcements.ts';
import type { FleetConfig, RolloutConfig } from './deploy-config.ts';
import { withFleet, type Print } from './deploy-actions.ts';
import { ExitCodes, type ExitCode } from './exit-codes.ts';
import { createHealthCheck, parseHealthTarget } from './health-check.ts';
import { InstanceWatch } from './instance-watch.ts';
import { Rollout } from './rollout.ts';

export async function runRollout(fleetConfig: FleetConfig, units: UnitsConfig, config: RolloutConfig, print: Print, printError: Print): Promise<ExitCode> {
  const templates = renderAppTemplates(units);
  const etcd = createEtcdClient(config.deployerEtcd ?? parseEtcdEndpoints(units.etcd));
  try {
    return await withFleet(fleetConfig, async (fleet) => {
      const probe = config.directCheck
        ? (backend: { host: string; port: number }) => {
          const host = backend.host.includes(':') ? `[${backend.host}]` : backend.host;
          const target = units.health === 'tcp' ? `tcp://${host}:${backend.port}` : `http://${host}:${backend.port}${units.health}`;
          return createHealthCheck(parseHealthTarget(target), Math.min(2000, config.pollInterval * 4))();
        }
        : null;
      const watch = new InstanceWatch(fleet, new EtcdAnnouncements(etcd, units.etcdPrefix), {
        timeout: config.timeout,
        withdrawTimeout: config.withdrawTimeout,
        pollInterval: config.pollInterval,
        probe,
      });
      const outcome = await new Rollout(fleet, watch, { app: units.app, image: units.image, templates, config }, print).run();
      switch (outcome.kind) {
        case 'completed':
          return ExitCodes.OK;
        case 'refused':
          printError(`tug deploy: rollout refused: ${outcome.reason}`);
          return ExitCodes.FAILED;
        case 'rolled-back':
          printError(`tug deploy: rollout failed and was rolled back: ${outcome.reason}`);
          return ExitCodes.ROLLED_BACK;
        case 'rollback-failed':
          printError(`tug deploy: rollout failed (${outcome.reason}) and so did the rollback: ${outcome.rollbackError}`);
          return ExitCodes.ROLLBACK_FAILED;
      }
    }, printError);
  } finally {
    etcd.close();
  }
}
