// The `tug` command line: one program, one sub-command per component. Commands
// only parse and validate; the components do the work, and their modules load
// only when their command runs (the Azure SDK alone costs ~100 ms at a start,
// etcd3 and gRPC tens of MiB in a process that never uses them).
import { Command } from 'commander';
import { TUG_VERSION } from '../common/version.ts';
import { announceCommand } from '../deployer/announce.command.ts';
import { deployActions, deployCommand } from '../deployer/deploy.command.ts';
import { gcCommand } from '../registry-proxy/gc/gc.command.ts';
import { registryCommand } from '../registry-proxy/registry.command.ts';
import { tokenServerCommand } from '../registry-proxy/token-server/token-server.command.ts';
import { routerCommand } from '../router/router.command.ts';
import { statusCommand } from '../status/status.command.ts';
import { unitsCommand } from '../units/units.command.ts';

export function createProgram(): Command {
  return new Command('tug')
    .description('Tug: the edge router, registry and deployer of a fleet + etcd cluster')
    .version(TUG_VERSION)
    .showHelpAfterError()
    .addCommand(routerCommand(async (config) => (await import('../router/main.ts')).startRouter(config)))
    .addCommand(registryCommand(
      async (config) => (await import('../registry-proxy/main.ts')).startRegistry(config),
      gcCommand(async (config) => (await import('../registry-proxy/gc/gc-main.ts')).runGarbageCollection(config)),
      tokenServerCommand(async (config) => (await import('../registry-proxy/token-server/token-server-main.ts')).startTokenServer(config)),
    ))
    .addCommand(announceCommand(async (config) => (await import('../deployer/announce-main.ts')).startAnnouncer(config)))
    .addCommand(statusCommand(async (config) => (await import('../status/status-main.ts')).runStatus(config)))
    .addCommand(unitsCommand(async (config, out) => (await import('../units/render-main.ts')).renderUnitsToDir(config, out)))
    .addCommand(deployCommand({
      ...deployActions,
      rollout: async (...args) => (await import('../deployer/rollout-main.ts')).runRollout(...args),
      split: async (...args) => (await import('../deployer/traffic-main.ts')).runSplit(...args),
      canary: async (...args) => (await import('../deployer/traffic-main.ts')).runCanaryCommand(...args),
    }));
}
