// `tug announce`: parses flags (and TUG_* variables) into an AnnounceConfig. No behaviour here.
import { Command } from 'commander';
import { addOptionTable } from '../common/option-spec.ts';
import { announceOptions, resolveAnnounceConfig, type AnnounceConfig, type RawAnnounceOptions } from './announce-config.ts';

export function announceCommand(run: (config: AnnounceConfig) => Promise<void>): Command {
  const command = new Command('announce')
    .description('the sidekick: announce a healthy app instance in etcd on a lease, withdraw it when unhealthy or stopped');
  addOptionTable(command, announceOptions);
  command.action(async (options: RawAnnounceOptions) => {
    await run(resolveAnnounceConfig(options));
  });
  return command;
}
