// `tug registry token-server`: parses flags into a validated TokenServerConfig
// and hands it to the token server. No behaviour here.
import { Command } from 'commander';
import { addOptionTable } from '../../common/option-spec.ts';
import { resolveTokenServerConfig, tokenServerOptions, type RawTokenServerOptions, type TokenServerConfig } from './token-server-config.ts';

export function tokenServerCommand(run: (config: TokenServerConfig) => Promise<void>): Command {
  const command = new Command('token-server')
    .description('issue the registry\'s tokens (Docker token auth) to the htpasswd users, as the ACL allows');
  addOptionTable(command, tokenServerOptions);
  command.action(async (_options: RawTokenServerOptions, self: Command) => {
    // `tug registry` declares --listen, --htpasswd, --acl and --log-level too and,
    // as commander parses a parent's flags anywhere on the line, may have taken
    // them from the command line: a value given there wins over this command's
    // default, never over its own flag or environment variable.
    const parent = self.parent!;
    const raw: RawTokenServerOptions = {};
    for (const key of Object.keys(tokenServerOptions) as (keyof RawTokenServerOptions)[]) {
      const source = self.getOptionValueSource(key);
      raw[key] = (source !== 'cli' && source !== 'env' && parent.getOptionValueSource(key) === 'cli' ? parent.getOptionValue(key) : self.getOptionValue(key)) as string | boolean | undefined;
    }
    await run(resolveTokenServerConfig(raw));
  });
  return command;
}
