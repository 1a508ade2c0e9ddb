// `tug units render <app>`: parses flags (and their environment variables)
// into a UnitsConfig and an output directory, and hands them over. No behaviour here.
import { Command, Option } from 'commander';
import { configError } from '../common/errors.ts';
import { addOptionTable } from '../common/option-spec.ts';
import { resolveUnitsConfig, unitsOptions, type RawUnitsOptions, type UnitsConfig } from './units-config.ts';

export type RenderAction = (config: UnitsConfig, out: string) => Promise<void>;

/** Adds every units option (flag, env variable, default) to a command; rollout shares them. */
export function addUnitsOptions(command: Command): Command {
  return addOptionTable(command, unitsOptions);
}

export function unitsCommand(render: RenderAction): Command {
  const renderCommand = addUnitsOptions(new Command('render')
    .description('write the fleet units (router, registry, <app>@.service, <app>-announce@.service) to --out')
    .argument('<app>', 'the app: its service name in etcd and the prefix of its units'))
    .addOption(new Option('--out <dir>', 'directory to write the unit files to').env('TUG_UNITS_OUT').makeOptionMandatory())
    // Usage errors exit 2, like every configuration error of tug (commander would exit 1).
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2));
  renderCommand.action(async (app: string, options: RawUnitsOptions & { out?: string }) => {
    if (!options.out) throw configError('--out is required');
    await render(resolveUnitsConfig(app, options), options.out);
  });
  return new Command('units')
    .description('the fleet unit files of a Tug cluster')
    .addCommand(renderCommand);
}
