// `tug registry`: parses flags (and their environment variables) into a
// validated RegistryConfig and hands it to the registry. No behaviour here.
import { Command } from 'commander';
import { addOptionTable } from '../common/option-spec.ts';
import { registryOptions, resolveRegistryConfig, type RawRegistryOptions, type RegistryConfig } from './config.ts';

export function registryCommand(run: (config: RegistryConfig) => Promise<void>, ...subcommands: Command[]): Command {
  const command = new Command('registry')
    .description('the OCI / Docker registry of this node, stored in Azure Blob Storage');
  for (const subcommand of subcommands) command.addCommand(subcommand);
  addOptionTable(command, registryOptions);
  command.action(async (options: RawRegistryOptions) => {
    await run(resolveRegistryConfig(options));
  });
  return command;
}
