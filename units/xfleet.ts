// The [X-Fleet] section: what fleet's scheduler reads from a unit, and the
// combinations fleet refuses (shared/fleet-api.md, "[X-Fleet] options"). The
// deployer validates here before submitting, so a refused unit never reaches
// the cluster half-deployed; the test double of fleet implements the same rules
// on its own, from the facts.
import type { UnitOption } from './unit-file.ts';
import { unitNameParts } from './unit-name.ts';

export interface XFleet {
  readonly machineID: string | null;
  readonly machineOf: readonly string[];
  /** key → accepted values: same key ORs, different keys AND. */
  readonly machineMetadata: ReadonlyMap<string, readonly string[]>;
  readonly conflicts: readonly string[];
  readonly global: boolean;
  readonly replaces: readonly string[];
}

const KNOWN = new Set(['MachineID', 'MachineOf', 'MachineMetadata', 'Conflicts', 'Global', 'Replaces']);

/** Expands the specifiers fleet expands in [X-Fleet] values: %n %N %p %i (and %%). */
export function expandSpecifiers(value: string, unitName: string): string {
  const parts = unitNameParts(unitName);
  const dot = unitName.lastIndexOf('.');
  const map: Record<string, string> = {
    n: unitName,
    N: dot === -1 ? unitName : unitName.slice(0, dot),
    p: parts.prefix,
    i: parts.instance ?? '',
    '%': '%',
  };
  return value.replace(/%([nNpi%])/g, (_, c: string) => map[c]);
}

/** Words of a value, honouring double quotes: `"a=b" "c=d"` → [a=b, c=d]. */
function words(value: string): string[] {
  return [...value.matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]).filter((w) => w !== '');
}

export function readXFleet(options: readonly UnitOption[], unitName: string): XFleet {
  const values = (name: string) => options
    .filter((o) => o.section === 'X-Fleet' && o.name === name)
    .flatMap((o) => words(expandSpecifiers(o.value, unitName)));
  const metadata = new Map<string, string[]>();
  for (const pair of values('MachineMetadata')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    const key = pair.slice(0, eq);
    metadata.set(key, [...(metadata.get(key) ?? []), pair.slice(eq + 1)]);
  }
  const global = values('Global');
  return {
    machineID: values('MachineID')[0] ?? null,
    machineOf: values('MachineOf'),
    machineMetadata: metadata,
    conflicts: values('Conflicts'),
    global: global.length > 0 && global[global.length - 1].toLowerCase() === 'true',
    replaces: values('Replaces'),
  };
}

/** A unit name matches a fleet glob (`*`, `?`, `[...]`) as Go's path.Match does for names without `/`. */
export function globMatches(glob: string, name: string): boolean {
  let source = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i];
    if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 1);
      if (end === -1) return false;
      source += `[${glob.slice(i + 1, end).replace(/^\^/, '^').replace(/\\/g, '\\\\')}]`;
      i = end;
    } else source += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(`^${source}$`).test(name);
}

/**
 * The first reason fleet would refuse this unit's [X-Fleet] section, or null.
 * Rules from the facts: MachineID excludes MachineOf, Conflicts, Global and
 * Replaces; Global excludes MachineOf and Replaces; Conflicts excludes Replaces;
 * MachineOf may not point at the unit itself; and (fleet's own check) a
 * MachineOf target may not match one of the unit's Conflicts globs.
 */
export function xfleetProblem(options: readonly UnitOption[], unitName: string): string | null {
  const x = readXFleet(options, unitName);
  const has = {
    machineID: x.machineID !== null,
    machineOf: x.machineOf.length > 0,
    conflicts: x.conflicts.length > 0,
    replaces: x.replaces.length > 0,
    global: x.global,
  };
  if (has.machineID && has.machineOf) return 'MachineID cannot be used with MachineOf';
  if (has.machineID && has.conflicts) return 'MachineID cannot be used with Conflicts';
  if (has.machineID && has.global) return 'MachineID cannot be used with Global';
  if (has.machineID && has.replaces) return 'MachineID cannot be used with Replaces';
  if (has.global && has.machineOf) return 'Global cannot be used with MachineOf';
  if (has.global && has.replaces) return 'Global cannot be used with Replaces';
  if (has.conflicts && has.replaces) return 'Conflicts cannot be used with Replaces';
  for (const peer of x.machineOf) {
    if (peer === unitName) return `MachineOf=${peer}: a unit cannot be a sidekick of itself`;
    for (const conflict of x.conflicts) {
      if (globMatches(conflict, peer)) return `unresolvable requirements: MachineOf ${JSON.stringify(peer)} matches Conflicts ${JSON.stringify(conflict)}`;
    }
  }
  return null;
}

/** Options in [X-Fleet] that fleet does not know: almost always a typo that silently changes scheduling. */
export function unknownXFleetOptions(options: readonly UnitOption[]): string[] {
  return options.filter((o) => o.section === 'X-Fleet' && !KNOWN.has(o.name)).map((o) => o.name);
}

/**
 * MachineOf cycles across a set of units (A sidekick of B, B sidekick of A):
 * fleet can never schedule them. Returns the cycle as names, or null.
 */
export function machineOfCycle(units: ReadonlyMap<string, readonly UnitOption[]>): string[] | null {
  const next = new Map<string, string[]>();
  for (const [name, options] of units) next.set(name, [...readXFleet(options, name).machineOf]);
  const state = new Map<string, 'visiting' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): string[] | null => {
    if (state.get(name) === 'done') return null;
    if (state.get(name) === 'visiting') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'visiting');
    path.push(name);
    for (const peer of next.get(name) ?? []) {
      const cycle = visit(peer);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(name, 'done');
    return null;
  };
  for (const name of units.keys()) {
    const cycle = visit(name);
    if (cycle) return cycle;
  }
  return null;
}
