// `tug status`: parses flags into a validated StatusConfig and hands it to the
// status action. No behaviour here.
import { Command } from 'commander';
import { addOptionTable } from '../common/option-spec.ts';
import { resolveStatusConfig, statusOptions, type RawStatusOptions, type StatusConfig } from './status-config.ts';

export function statusCommand(run: (config: StatusConfig) => Promise<void>): Command {
  const command = new Command('status')
    .description('the cluster from etcd: every router and the revision it applied, services, routes, certificates expiring soon');
  addOptionTable(command, statusOptions);
  command.action(async (options: RawStatusOptions) => {
    await run(resolveStatusConfig(options));
  });
  return command;
}
