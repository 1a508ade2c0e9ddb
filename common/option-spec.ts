// One row of a command's option table: the flag, its environment variable, its
// documented default and its meaning. A command adds every row to commander in
// one loop, so the help text, the env names and the README table never drift.
import { Option, type Command } from 'commander';

export interface OptionSpec {
  /** commander flag syntax */
  readonly flags: string;
  readonly env: string;
  readonly description: string;
  readonly default: string | undefined;
}

export function addOptionTable(command: Command, table: Record<string, OptionSpec>): Command {
  for (const spec of Object.values(table)) {
    const option = new Option(spec.flags, spec.description).env(spec.env);
    if (spec.default !== undefined && spec.default !== '') option.default(spec.default);
    command.addOption(option);
  }
  return command;
}

/** The flag name (`--listen`) of an option row, for error messages. */
export function flagName(spec: OptionSpec): string {
  return spec.flags.split(' ')[0];
}
