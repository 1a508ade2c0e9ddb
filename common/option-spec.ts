// One row of a command's option table: the flag, its environment variable, its
// documented default and its meaning. A command adds every row to commander in
// one loop, so the help text, the env names and the README table never drift.
import { Option, type Command } from 'commander';
import { configError } from './errors.ts';
import { parseDuration } from './units.ts';

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

/**
 * Reads a command's raw options (what commander hands over) against its table. `get`: the value,
 * else the documented default; an option without a default that is missing or empty is a
 * configuration error naming the flag and its variable. `duration`: get, parsed, at least `min` ms.
 */
export function optionReader<K extends string>(table: Record<K, OptionSpec>, raw: Partial<Record<K, unknown>>) {
  const flag = (name: K): string => flagName(table[name]);
  const get = (name: K): string => {
    const value = raw[name] ?? table[name].default;
    if (typeof value !== 'string' || (value === '' && table[name].default === undefined)) {
      throw configError(`${flag(name)} is required (or ${table[name].env})`);
    }
    return value;
  };
  const duration = (name: K, min = 1): number => {
    const ms = parseDuration(flag(name), get(name));
    if (ms < min) throw configError(min === 1 ? `${flag(name)}: must be greater than zero` : `${flag(name)}: at least ${min}ms`);
    return ms;
  };
  return { flag, get, duration };
}
