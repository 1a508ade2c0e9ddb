// The verbs of `tug deploy` other than rollout: each talks to fleet through
// FleetClient, prints one line per unit (or a table, or JSON with --json) on
// stdout, and returns an exit code from exit-codes.ts. Names and unit files
// are checked before anything is sent, so a usage error never half-applies.
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { ErrorCodes, TugError } from '../common/errors.ts';
import { checkUnits } from '../units/render.ts';
import { parseUnitFile, sameOptions, type UnitOption } from '../units/unit-file.ts';
import { isTemplateName, templateOf, unitNameProblem } from '../units/unit-name.ts';
import type { FleetConfig } from './deploy-config.ts';
import { ExitCodes, type ExitCode } from './exit-codes.ts';
import { FleetClient, FleetError, type DesiredState } from './fleet-client.ts';

export type Print = (line: string) => void;

export interface ListOptions {
  readonly json?: boolean;
  readonly machineID?: string;
  readonly unitName?: string;
}

/** Maps any failure to the exit-code contract and prints it as one line on stderr. */
export function failureExitCode(err: unknown, printError: Print): ExitCode {
  printError(`tug deploy: ${err instanceof Error ? err.message : String(err)}`);
  if (err instanceof FleetError) return err.code === ErrorCodes.FLEET_UNREACHABLE ? ExitCodes.UNREACHABLE : ExitCodes.FAILED;
  if (err instanceof TugError && (err.code === ErrorCodes.CONFIG_INVALID || err.code === ErrorCodes.UNIT_INVALID)) return ExitCodes.USAGE;
  return ExitCodes.FAILED;
}

export async function withFleet(config: FleetConfig, run: (fleet: FleetClient) => Promise<ExitCode>, printError: Print): Promise<ExitCode> {
  const fleet = new FleetClient(config.endpoint, { timeout: config.requestTimeout });
  try {
    return await run(fleet);
  } catch (err) {
    return failureExitCode(err, printError);
  } finally {
    await fleet.close();
  }
}

function checkNames(names: readonly string[], allowTemplates: boolean): void {
  for (const name of names) {
    const problem = unitNameProblem(name);
    if (problem !== null) throw new TugError(ErrorCodes.UNIT_INVALID, `${JSON.stringify(name)}: ${problem}`);
    if (!allowTemplates && isTemplateName(name)) throw new TugError(ErrorCodes.UNIT_INVALID, `${name} is a template: start an instance of it, e.g. ${name.replace('@.', '@1.')}`);
  }
}

/** Submits unit files (name = file name) as inactive units; an existing unit with other content needs --replace. */
export async function submitUnits(fleet: FleetClient, files: readonly string[], replace: boolean, print: Print): Promise<ExitCode> {
  const units: { name: string; options: UnitOption[] }[] = [];
  for (const file of files) {
    const name = basename(file);
    checkNames([name], true);
    const options = parseUnitFile(await readFile(file, 'utf8').catch((err: Error) => { throw new TugError(ErrorCodes.UNIT_INVALID, `${file}: ${err.message}`); }));
    if (typeof options === 'string') throw new TugError(ErrorCodes.UNIT_INVALID, `${file}: ${options}`);
    units.push({ name, options });
  }
  checkUnits(units);
  for (const unit of units) {
    const existing = await fleet.getUnit(unit.name);
    if (existing === null) {
      await fleet.submitUnit(unit.name, unit.options, 'inactive');
      print(`submitted ${unit.name}`);
    } else if (sameOptions(existing.options, unit.options)) {
      print(`unchanged ${unit.name}`);
    } else if (!replace) {
      throw new FleetError(ErrorCodes.FLEET_REJECTED, null, `${unit.name} exists with other content; destroy it first or pass --replace (a launched unit restarts with the new content)`);
    } else {
      await fleet.submitUnit(unit.name, unit.options, existing.desiredState);
      print(`replaced ${unit.name} (${existing.desiredState})`);
    }
  }
  return ExitCodes.OK;
}

/**
 * start → launched, stop → loaded (fleetctl's meanings). Starting an unknown
 * instance of a known template submits it with the template's options, as fleetctl does.
 */
export async function setUnitsState(fleet: FleetClient, names: readonly string[], state: DesiredState, print: Print): Promise<ExitCode> {
  checkNames(names, state === 'inactive');
  for (const name of names) {
    const existing = await fleet.getUnit(name);
    if (existing === null) {
      const template = templateOf(name);
      const templateUnit = template === null ? null : await fleet.getUnit(template);
      if (templateUnit === null) throw new FleetError(ErrorCodes.FLEET_REJECTED, 404, `${name}: unit does not exist (submit it first)`);
      checkUnits([{ name, options: templateUnit.options }]);
      await fleet.submitUnit(name, templateUnit.options, state);
    } else {
      await fleet.setDesiredState(name, state);
    }
    print(`${state === 'launched' ? 'started' : state === 'loaded' ? 'stopped' : 'unloaded'} ${name}`);
  }
  return ExitCodes.OK;
}

export async function destroyUnits(fleet: FleetClient, names: readonly string[], print: Print): Promise<ExitCode> {
  checkNames(names, true);
  for (const name of names) {
    if (!await fleet.destroyUnit(name)) throw new FleetError(ErrorCodes.FLEET_REJECTED, 404, `${name}: unit does not exist`);
    print(`destroyed ${name}`);
  }
  return ExitCodes.OK;
}

export async function listUnits(fleet: FleetClient, options: ListOptions, print: Print): Promise<ExitCode> {
  const units = await fleet.listUnits();
  if (options.json) print(JSON.stringify(units));
  else table(print, ['UNIT', 'DESIRED', 'CURRENT', 'MACHINE'], units.map((u) => [u.name, u.desiredState, u.currentState ?? '-', u.machineID ?? (u.currentState === undefined ? 'global' : '-')]));
  return ExitCodes.OK;
}

export async function listUnitStates(fleet: FleetClient, options: ListOptions, print: Print): Promise<ExitCode> {
  const states = await fleet.listUnitStates({ machineID: options.machineID, unitName: options.unitName });
  if (options.json) print(JSON.stringify(states));
  else table(print, ['UNIT', 'MACHINE', 'LOAD', 'ACTIVE', 'SUB', 'HASH'], states.map((s) => [s.name, s.machineID, s.systemdLoadState, s.systemdActiveState, s.systemdSubState, s.hash.slice(0, 7)]));
  return ExitCodes.OK;
}

export async function listMachines(fleet: FleetClient, options: ListOptions, print: Print): Promise<ExitCode> {
  const machines = await fleet.listMachines();
  if (options.json) print(JSON.stringify(machines));
  else table(print, ['MACHINE', 'IP', 'METADATA'], machines.map((m) => [m.id, m.primaryIP, Object.entries(m.metadata).map(([k, v]) => `${k}=${v}`).join(',') || '-']));
  return ExitCodes.OK;
}

/** Columns separated by two spaces; the header names them (fleetctl's layout, without its truncation). */
function table(print: Print, header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  for (const row of [header, ...rows]) print(row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]))).join('  '));
}
