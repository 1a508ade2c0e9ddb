// `tug announce`: parses flags (and TUG_* variables) into an AnnounceConfig. No behaviour here.
import { Command, Option } from 'commander';
import { announceOptions, resolveAnnounceConfig, type AnnounceConfig, type RawAnnounceOptions } from './announce-config.ts';

export function announceCommand(run: (config: AnnounceConfig) => Promise<void>): Command {
  const command = new Command('announce')
    .description('the sidekick: announce a healthy app instance in etcd on a lease, withdraw it when unhealthy or stopped');
  for (const spec of Object.values(announceOptions)) {
    const option = new Option(spec.flags, spec.description).env(spec.env);
    if (spec.default !== undefined && spec.default !== '') option.default(spec.default);
    command.addOption(option);
  }
  command.action(async (options: RawAnnounceOptions) => {
    await run(resolveAnnounceConfig(options));
  });
  return command;
}
