// `tug deploy [--endpoint URL] <verb>`: parses flags (and FLEETCTL_ENDPOINT /
// TUG_* variables) into typed configs and hands them to the actions. No
// behaviour here. Every verb ends with process.exitCode from exit-codes.ts;
// commander's own usage errors exit 2 too.
import { Command, type CommanderError } from 'commander';
import { addOptionTable } from '../common/option-spec.ts';
import { addUnitsOptions } from '../units/units.command.ts';
import { resolveUnitsConfig, type RawUnitsOptions, type UnitsConfig } from '../units/units-config.ts';
import { fleetOptions, resolveFleetConfig, resolveRolloutConfig, rolloutOptions, type FleetConfig, type RawFleetOptions, type RawRolloutOptions, type RolloutConfig } from './deploy-config.ts';
import { destroyUnits, failureExitCode, listMachines, listUnits, listUnitStates, setUnitsState, submitUnits, withFleet, type ListOptions, type Print } from './deploy-actions.ts';
import { ExitCodes, type ExitCode } from './exit-codes.ts';
import type { FleetClient } from './fleet-client.ts';
import { canaryOptions, parseSplitArguments, resolveCanaryConfig, resolveTrafficConfig, trafficOptions, type CanaryConfig, type RawCanaryOptions, type RawTrafficOptions, type TrafficConfig } from './traffic-config.ts';
import type { WeightedService } from '../router/etcd/route-keys.ts';

export interface DeployActions {
  readonly withFleet: (config: FleetConfig, run: (fleet: FleetClient) => Promise<ExitCode>, printError: Print) => Promise<ExitCode>;
  readonly rollout: (fleet: FleetConfig, units: UnitsConfig, rollout: RolloutConfig, print: Print, printError: Print) => Promise<ExitCode>;
  readonly split: (traffic: TrafficConfig, route: string, services: readonly WeightedService[], print: Print, printError: Print) => Promise<ExitCode>;
  readonly canary: (traffic: TrafficConfig, route: string, canary: CanaryConfig, print: Print, printError: Print) => Promise<ExitCode>;
}

const print: Print = (line) => { process.stdout.write(`${line}\n`); };
const printError: Print = (line) => { process.stderr.write(`${line}\n`); };

/** Usage errors exit 2 (commander would exit 1); help exits 0. */
function usageExit(err: CommanderError): never {
  process.exit(err.exitCode === 0 ? 0 : ExitCodes.USAGE);
}

export function deployCommand(actions: DeployActions): Command {
  const deploy = new Command('deploy')
    .description('drive fleet\'s HTTP API: submit, start, stop, destroy, list, and roll an app out without dropping a request')
    .exitOverride(usageExit);
  addOptionTable(deploy, fleetOptions);
  const fleetConfig = (command: Command) => resolveFleetConfig(command.optsWithGlobals<RawFleetOptions>());
  const run = (command: Command, body: (fleet: FleetClient) => Promise<ExitCode>) => async () => {
    let config: FleetConfig;
    try {
      config = fleetConfig(command);
    } catch (err) {
      process.exitCode = failureExitCode(err, printError);
      return;
    }
    process.exitCode = await actions.withFleet(config, body, printError);
  };
  const verb = (name: string, description: string) => {
    const command = new Command(name).description(description).exitOverride(usageExit);
    deploy.addCommand(command);
    return command;
  };

  const submit = verb('submit', 'submit unit files (inactive); the unit name is the file name')
    .argument('<files...>')
    .option('--replace', 'replace a unit that exists with other content (a launched unit restarts)');
  submit.action((files: string[], options: { replace?: boolean }) => run(submit, (fleet) => submitUnits(fleet, files, options.replace === true, print))());

  const start = verb('start', 'launch units (an unknown instance of a submitted template is created from it)').argument('<units...>');
  start.action((names: string[]) => run(start, (fleet) => setUnitsState(fleet, names, 'launched', print))());
  const stop = verb('stop', 'stop units (they stay loaded on their machine)').argument('<units...>');
  stop.action((names: string[]) => run(stop, (fleet) => setUnitsState(fleet, names, 'loaded', print))());
  const destroy = verb('destroy', 'stop and remove units from the cluster').argument('<units...>');
  destroy.action((names: string[]) => run(destroy, (fleet) => destroyUnits(fleet, names, print))());

  const list = (name: string, alias: string, description: string, body: (fleet: FleetClient, options: ListOptions) => Promise<ExitCode>) => {
    const command = verb(name, description).alias(alias).option('--json', 'print the API\'s objects as one JSON array');
    command.action((options: ListOptions) => run(command, (fleet) => body(fleet, options))());
    return command;
  };
  list('list-units', 'units', 'units with their desired and current state and machine', (fleet, options) => listUnits(fleet, options, print));
  list('list-unit-states', 'states', 'systemd state of each unit on each machine', (fleet, options) => listUnitStates(fleet, options, print))
    .option('--machine-id <id>', 'only this machine')
    .option('--unit-name <name>', 'only this unit');
  list('list-machines', 'machines', 'machines with their address and metadata', (fleet, options) => listMachines(fleet, options, print));

  const rollout = addUnitsOptions(verb('rollout', 'replace the app\'s instances one at a time with --image; roll back on failure')
    .argument('<app>', 'the app (its units are <app>@N.service and <app>-announce@N.service)'));
  addOptionTable(rollout, rolloutOptions);
  rollout.action(async (app: string, options: RawUnitsOptions & RawRolloutOptions) => {
    let configs: [FleetConfig, UnitsConfig, RolloutConfig];
    try {
      configs = [fleetConfig(rollout), resolveUnitsConfig(app, options), resolveRolloutConfig(options)];
    } catch (err) {
      process.exitCode = failureExitCode(err, printError);
      return;
    }
    process.exitCode = await actions.rollout(...configs, print, printError);
  });

  // Traffic verbs talk to etcd, not fleet: a route's split between services.
  const split = verb('split', 'set a route\'s weights between services in etcd (one atomic put): split ROUTE web-v1=90 web-v2=10')
    .argument('<route>', 'the route rule\'s name (/routes/<route>)')
    .argument('<weights...>', 'SERVICE=WEIGHT, weights 0..100');
  addOptionTable(split, trafficOptions);
  split.action(async (route: string, weights: string[], options: RawTrafficOptions) => {
    let configs: [TrafficConfig, WeightedService[]];
    try {
      configs = [resolveTrafficConfig(options), parseSplitArguments(weights)];
    } catch (err) {
      process.exitCode = failureExitCode(err, printError);
      return;
    }
    process.exitCode = await actions.split(configs[0], route, configs[1], print, printError);
  });

  const canary = verb('canary', 'move a route\'s traffic to --to in steps, watching its 5xx share in the routers\' /metrics; restore the previous split when it exceeds the bound')
    .argument('<route>', 'the route rule\'s name (/routes/<route>)');
  addOptionTable(canary, trafficOptions);
  addOptionTable(canary, canaryOptions);
  canary.action(async (route: string, options: RawTrafficOptions & RawCanaryOptions) => {
    let configs: [TrafficConfig, CanaryConfig];
    try {
      configs = [resolveTrafficConfig(options), resolveCanaryConfig(options)];
    } catch (err) {
      process.exitCode = failureExitCode(err, printError);
      return;
    }
    process.exitCode = await actions.canary(configs[0], route, configs[1], print, printError);
  });
  return deploy;
}

export const deployActions: Omit<DeployActions, 'rollout' | 'split' | 'canary'> = { withFleet };
