// `tug router`: parses flags (and their TUG_* environment variables) into a
// validated RouterConfig and hands it to the router. No behaviour here.
import { Command, Option } from 'commander';
import { routerOptions, resolveRouterConfig, type RawRouterOptions } from './config.ts';

export function routerCommand(run: (config: ReturnType<typeof resolveRouterConfig>) => Promise<void>): Command {
  const command = new Command('router')
    .description('the edge reverse proxy: routes HTTP to the instances announced in etcd');
  for (const spec of Object.values(routerOptions)) {
    const option = new Option(spec.flags, spec.description).env(spec.env);
    if (spec.default !== undefined && spec.default !== '') option.default(spec.default);
    if ('repeatable' in spec) option.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    command.addOption(option);
  }
  command.action(async (options: RawRouterOptions) => {
    await run(resolveRouterConfig(options));
  });
  return command;
}
