// The `tug` command line: one program, one sub-command per component. Commands
// only parse and validate; the components do the work.
import { Command } from 'commander';
import { announceCommand } from '../deployer/announce.command.ts';
import { startAnnouncer } from '../deployer/announce-main.ts';
import { deployActions, deployCommand } from '../deployer/deploy.command.ts';
import { runRollout } from '../deployer/rollout-main.ts';
import { gcCommand } from '../registry-proxy/gc.command.ts';
import { registryCommand } from '../registry-proxy/registry.command.ts';
import { startRouter } from '../router/main.ts';
import { routerCommand } from '../router/router.command.ts';
import { renderUnitsToDir } from '../units/render-main.ts';
import { unitsCommand } from '../units/units.command.ts';

export function createProgram(): Command {
  return new Command('tug')
    .description('Tug: the edge router, registry and deployer of a fleet + etcd cluster')
    .version('0.1.0')
    .showHelpAfterError()
    .addCommand(routerCommand(startRouter))
    // The registry's modules load when it runs: the Azure SDK alone costs ~100 ms at every start.
    .addCommand(registryCommand(
      async (config) => (await import('../registry-proxy/main.ts')).startRegistry(config),
      gcCommand(async (config) => (await import('../registry-proxy/gc-main.ts')).runGarbageCollection(config)),
    ))
    .addCommand(announceCommand(startAnnouncer))
    .addCommand(unitsCommand(renderUnitsToDir))
    .addCommand(deployCommand({ ...deployActions, rollout: runRollout }));
}
