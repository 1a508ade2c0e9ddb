// The `tug` command line: one program, one sub-command per component. Commands
// only parse and validate; the components do the work.
import { Command } from 'commander';
import { announceCommand } from '../deployer/announce.command.ts';
import { startAnnouncer } from '../deployer/announce-main.ts';
import { startRouter } from '../router/main.ts';
import { routerCommand } from '../router/router.command.ts';

export function createProgram(): Command {
  return new Command('tug')
    .description('Tug: the edge router, registry and deployer of a fleet + etcd cluster')
    .version('0.1.0')
    .showHelpAfterError()
    .addCommand(routerCommand(startRouter))
    .addCommand(announceCommand(startAnnouncer));
}
