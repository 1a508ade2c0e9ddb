// Renders the fleet units of a Tug cluster from one UnitsConfig: the router and
// registry (global), the app template and its announcer template. Every unit is
// checked against fleet's name and [X-Fleet] rules before it leaves here, so
// `tug units render` never writes, and the deployer never submits, a unit fleet
// would refuse.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ErrorCodes, TugError } from '../common/errors.ts';
import { announceUnit } from './announce.unit.ts';
import { appUnit } from './app.unit.ts';
import { registryUnit } from './registry.unit.ts';
import { routerUnit } from './router.unit.ts';
import { parseUnitFile, type UnitOption } from './unit-file.ts';
import { instanceName, unitNameProblem } from './unit-name.ts';
import type { UnitsConfig } from './units-config.ts';
import { machineOfCycle, unknownXFleetOptions, xfleetProblem } from './xfleet.ts';

export interface RenderedUnit {
  readonly name: string;
  /** The unit file as written to disk. */
  readonly text: string;
  /** The same unit as fleet's API carries it. */
  readonly options: readonly UnitOption[];
}

export function renderUnits(config: UnitsConfig): RenderedUnit[] {
  const units = [routerUnit(config), registryUnit(config), appUnit(config), announceUnit(config)].map(toRendered);
  checkUnits(units);
  return units;
}

/** The app template and its announcer, the pair a rollout instantiates. */
export function renderAppTemplates(config: UnitsConfig): { app: RenderedUnit; announce: RenderedUnit } {
  const app = toRendered(appUnit(config));
  const announce = toRendered(announceUnit(config));
  checkUnits([app, announce]);
  return { app, announce };
}

/** fleetctl's way to start `foo@3.service`: the template's options, submitted under the instance name. */
export function instantiate(template: RenderedUnit, instance: string): RenderedUnit {
  return { name: instanceName(template.name, instance), text: template.text, options: template.options };
}

/**
 * Refuses units fleet would refuse (bad name, forbidden X-Fleet combination,
 * MachineOf cycle) and unknown X-Fleet keys, which fleet ignores silently.
 */
export function checkUnits(units: readonly { name: string; options: readonly UnitOption[] }[]): void {
  for (const unit of units) {
    const problem = unitNameProblem(unit.name) ?? xfleetProblem(unit.options, unit.name);
    if (problem !== null) throw new TugError(ErrorCodes.UNIT_INVALID, `${unit.name}: ${problem}`);
    const unknown = unknownXFleetOptions(unit.options);
    if (unknown.length > 0) throw new TugError(ErrorCodes.UNIT_INVALID, `${unit.name}: unknown [X-Fleet] option ${unknown.join(', ')} (fleet would ignore it)`);
  }
  const cycle = machineOfCycle(new Map(units.map((u) => [u.name, u.options])));
  if (cycle !== null) throw new TugError(ErrorCodes.UNIT_INVALID, `MachineOf cycle: ${cycle.join(' → ')}`);
}

/** Writes each unit as DIR/<name>; returns the paths written. */
export async function writeUnits(dir: string, units: readonly RenderedUnit[]): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const paths: string[] = [];
  for (const unit of units) {
    const path = join(dir, unit.name);
    await writeFile(path, unit.text);
    paths.push(path);
  }
  return paths;
}

function toRendered(unit: { name: string; text: string }): RenderedUnit {
  const options = parseUnitFile(unit.text);
  // A template that does not parse is a bug in this code base, not a user error.
  if (typeof options === 'string') throw new Error(`${unit.name}: ${options}`);
  return { name: unit.name, text: unit.text, options };
}
