// `tug registry gc [--dry-run]`: parses flags into a validated GcConfig and
// hands it to the garbage collector. No behaviour here.
import { Command } from 'commander';
import { addOptionTable } from '../../common/option-spec.ts';
import { gcOptions, resolveGcConfig, type GcConfig, type RawGcOptions } from './gc-config.ts';

export function gcCommand(run: (config: GcConfig) => Promise<void>): Command {
  const command = new Command('gc')
    .description('delete the blobs no manifest references (safe while pushes continue; what is younger than --grace-period is kept)');
  addOptionTable(command, gcOptions);
  command.action(async (_options: RawGcOptions, self: Command) => {
    // `tug registry` declares the storage flags too and, as commander parses a
    // parent's flags anywhere on the line, may have taken them: read both levels.
    const all = self.optsWithGlobals<RawGcOptions>();
    const raw: RawGcOptions = {};
    for (const key of Object.keys(gcOptions) as (keyof RawGcOptions)[]) raw[key] = all[key];
    await run(resolveGcConfig(raw));
  });
  return command;
}
