// The model behind the fleet double (test/helpers/fleet-double.ts): units as
// fleet's registry keeps them, fake machines, a scheduler that honours
// MachineID / MachineOf / MachineMetadata / Conflicts / Global, and an agent
// that "runs" a unit by calling test-supplied start/stop functions, so a
// rollout can be tested end to end on one machine. It follows
// shared/fleet-api.md; it does its own reading of [X-Fleet] (not the deployer's
// code), so a deployer bug cannot hide behind a double with the same bug.
// Not modelled: Replaces (accepted, not acted on), agent TTLs, engine leader changes.
import { createHash } from 'node:crypto';

export interface Option { readonly section: string; readonly name: string; readonly value: string }
export type DesiredState = 'inactive' | 'loaded' | 'launched';
export const DESIRED_STATES: readonly string[] = ['inactive', 'loaded', 'launched'];

export interface FakeMachine {
  readonly id: string;
  readonly primaryIP: string;
  readonly metadata: Record<string, string>;
}

export interface StoredUnit {
  readonly name: string;
  options: Option[];
  desiredState: DesiredState;
  /** null = unscheduled (always null for global units). */
  machineID: string | null;
}

/** What the agent is asked to run: one unit on one machine. */
export interface AgentUnit {
  readonly name: string;
  readonly options: readonly Option[];
  readonly machine: FakeMachine;
}

/** Plays fleet's agent (systemd on a node): start throws = the unit failed. */
export interface FleetAgent {
  start(unit: AgentUnit): Promise<void>;
  stop(unit: AgentUnit): Promise<void>;
}

interface Placement {
  readonly name: string;
  readonly machineID: string;
  options: Option[];
  hash: string;
  target: 'loaded' | 'launched';
  /** What the agent has applied so far. */
  applied: 'none' | 'loaded' | 'launched';
  active: 'inactive' | 'activating' | 'active' | 'deactivating' | 'failed';
  sub: string;
}

export interface UnitStateView {
  name: string; hash: string; machineID: string; systemdLoadState: string; systemdActiveState: string; systemdSubState: string;
}

export function unitHash(options: readonly Option[]): string {
  const sections = new Map<string, string[]>();
  for (const o of options) sections.set(o.section, [...(sections.get(o.section) ?? []), `${o.name}=${o.value}`]);
  const text = [...sections].map(([s, lines]) => `[${s}]\n${lines.join('\n')}\n`).join('\n');
  return createHash('sha1').update(text).digest('hex');
}

function xfleet(options: readonly Option[], unitName: string, key: string): string[] {
  const dot = unitName.lastIndexOf('.');
  const stem = dot === -1 ? unitName : unitName.slice(0, dot);
  const at = stem.indexOf('@');
  const spec: Record<string, string> = { n: unitName, N: stem, p: at === -1 ? stem : stem.slice(0, at), i: at === -1 ? '' : stem.slice(at + 1), '%': '%' };
  return options.filter((o) => o.section === 'X-Fleet' && o.name === key)
    .flatMap((o) => [...o.value.replace(/%([nNpi%])/g, (_, c: string) => spec[c]).matchAll(/"([^"]*)"|(\S+)/g)].map((m) => m[1] ?? m[2]));
}

export function isGlobal(options: readonly Option[], name: string): boolean {
  const values = xfleet(options, name, 'Global');
  return values.length > 0 && values[values.length - 1].toLowerCase() === 'true';
}

function glob(pattern: string, name: string): boolean {
  const source = pattern.replace(/[.+^${}()|\\]/g, '\\$&').replace(/\*/g, '[^/]*').replace(/\?/g, '[^/]');
  return new RegExp(`^${source}$`).test(name);
}

export class FleetCluster {
  readonly units = new Map<string, StoredUnit>();
  readonly machines: FakeMachine[] = [];
  readonly #placements = new Map<string, Placement>();
  /** Per unit+machine, the agent's actions run one after another, as systemd's jobs do. */
  readonly #chains = new Map<string, Promise<void>>();
  #agent: FleetAgent;
  /** Every agent action in order, for tests: "start web@1.service on m1". */
  readonly journal: string[] = [];

  constructor(agent: FleetAgent = { start: async () => {}, stop: async () => {} }) {
    this.#agent = agent;
  }

  addMachine(metadata: Record<string, string> = {}): FakeMachine {
    const n = this.machines.length + 1;
    const machine = { id: createHash('md5').update(`machine-${n}`).digest('hex'), primaryIP: `10.0.0.${n}`, metadata: { ...metadata } };
    this.machines.push(machine);
    this.reconcile();
    return machine;
  }

  setMetadata(machineID: string, key: string, value: string | null): void {
    const machine = this.machines.find((m) => m.id === machineID);
    if (!machine) return;
    if (value === null) delete machine.metadata[key];
    else machine.metadata[key] = value;
    this.reconcile();
  }

  /** A unit crashed on its machine (systemd marks it failed); the unit keeps its desired state. */
  markFailed(name: string): void {
    for (const p of this.#placements.values()) if (p.name === name) { p.active = 'failed'; p.sub = 'failed'; }
  }

  /** Waits for every agent action queued so far. */
  async settled(): Promise<void> {
    let before: Promise<void>[];
    do {
      before = [...this.#chains.values()];
      await Promise.all(before);
    } while ([...this.#chains.values()].some((c, i) => c !== before[i]));
  }

  currentState(unit: StoredUnit): string | undefined {
    if (isGlobal(unit.options, unit.name)) return undefined;
    const placement = unit.machineID === null ? undefined : this.#placements.get(`${unit.name}\0${unit.machineID}`);
    return placement === undefined || placement.applied === 'none' ? 'inactive' : placement.applied;
  }

  states(): UnitStateView[] {
    return [...this.#placements.values()]
      .sort((a, b) => a.name.localeCompare(b.name) || a.machineID.localeCompare(b.machineID))
      .map((p) => ({ name: p.name, hash: p.hash, machineID: p.machineID, systemdLoadState: 'loaded', systemdActiveState: p.active, systemdSubState: p.sub }));
  }

  /** Brings schedule and agent in line with the registry; called after every change. */
  reconcile(): void {
    this.#schedule();
    const wanted = new Map<string, { unit: StoredUnit; machine: FakeMachine }>();
    for (const unit of this.units.values()) {
      if (unit.desiredState === 'inactive') continue;
      if (isGlobal(unit.options, unit.name)) {
        for (const machine of this.machines) if (this.#metadataMatches(unit, machine)) wanted.set(`${unit.name}\0${machine.id}`, { unit, machine });
      } else if (unit.machineID !== null) {
        const machine = this.machines.find((m) => m.id === unit.machineID);
        if (machine) wanted.set(`${unit.name}\0${machine.id}`, { unit, machine });
      }
    }
    for (const [key, placement] of this.#placements) {
      if (wanted.has(key)) continue;
      this.#placements.delete(key);
      const machine = this.machines.find((m) => m.id === placement.machineID);
      // Checked when its turn comes: a start still in flight must finish, then be stopped.
      if (machine) this.#queue(key, async () => { if (placement.applied === 'launched') await this.#stop(placement, machine); });
    }
    for (const [key, { unit, machine }] of wanted) {
      const target = unit.desiredState as 'loaded' | 'launched';
      let placement = this.#placements.get(key);
      const hash = unitHash(unit.options);
      if (placement === undefined) {
        placement = { name: unit.name, machineID: machine.id, options: unit.options, hash, target, applied: 'none', active: 'inactive', sub: 'dead' };
        this.#placements.set(key, placement);
        this.#queue(key, () => this.#apply(placement!, machine));
      } else if (placement.hash !== hash || placement.target !== target) {
        // New content restarts the unit with it (fleet: "replaces the unit, which restarts").
        const replaced = placement.hash !== hash;
        const p = placement;
        const previous = { options: p.options };
        p.hash = hash;
        p.target = target;
        this.#queue(key, async () => {
          if (replaced && p.applied === 'launched') await this.#stop(p, machine, previous.options);
          p.options = unit.options;
          await this.#apply(p, machine);
        });
      }
    }
  }

  #queue(key: string, action: () => Promise<void>): void {
    const next = (this.#chains.get(key) ?? Promise.resolve()).then(action).catch(() => {});
    this.#chains.set(key, next);
  }

  async #apply(p: Placement, machine: FakeMachine): Promise<void> {
    if (this.#placements.get(`${p.name}\0${p.machineID}`) !== p) return;
    if (p.target === 'loaded') {
      if (p.applied === 'launched') await this.#stop(p, machine);
      p.applied = 'loaded';
      return;
    }
    if (p.applied === 'launched') return;
    p.active = 'activating';
    p.sub = 'start';
    this.journal.push(`start ${p.name} on ${machine.id}`);
    try {
      await this.#agent.start({ name: p.name, options: p.options, machine });
      p.active = 'active';
      p.sub = 'running';
    } catch {
      p.active = 'failed';
      p.sub = 'failed';
    }
    p.applied = 'launched';
  }

  async #stop(p: Placement, machine: FakeMachine, options: readonly Option[] = p.options): Promise<void> {
    p.active = 'deactivating';
    p.sub = 'stop-sigterm';
    this.journal.push(`stop ${p.name} on ${machine.id}`);
    try {
      await this.#agent.stop({ name: p.name, options, machine });
    } finally {
      p.active = 'inactive';
      p.sub = 'dead';
      p.applied = 'loaded';
    }
  }

  #metadataMatches(unit: StoredUnit, machine: FakeMachine): boolean {
    const wanted = new Map<string, string[]>();
    for (const pair of xfleet(unit.options, unit.name, 'MachineMetadata')) {
      const eq = pair.indexOf('=');
      if (eq > 0) wanted.set(pair.slice(0, eq), [...(wanted.get(pair.slice(0, eq)) ?? []), pair.slice(eq + 1)]);
    }
    return [...wanted].every(([key, values]) => values.includes(machine.metadata[key]));
  }

  #conflictsOn(unit: StoredUnit, machineID: string): boolean {
    const mine = xfleet(unit.options, unit.name, 'Conflicts');
    for (const other of this.units.values()) {
      if (other === unit || other.machineID !== machineID) continue;
      if (mine.some((g) => glob(g, other.name))) return true;
      if (xfleet(other.options, other.name, 'Conflicts').some((g) => glob(g, unit.name))) return true;
    }
    return false;
  }

  /** Where a unit may run now: null = nowhere yet (it waits, as fleet's engine does). */
  #placeable(unit: StoredUnit): string | null {
    const machineID = xfleet(unit.options, unit.name, 'MachineID')[0];
    if (machineID !== undefined) return this.machines.some((m) => m.id.startsWith(machineID)) ? this.machines.find((m) => m.id.startsWith(machineID))!.id : null;
    const peers = xfleet(unit.options, unit.name, 'MachineOf');
    if (peers.length > 0) {
      const homes = new Set(peers.map((peer) => this.units.get(peer)?.machineID ?? null));
      const [home] = homes;
      if (homes.size !== 1 || home === null || home === undefined) return null;
      const machine = this.machines.find((m) => m.id === home);
      return machine && this.#metadataMatches(unit, machine) && !this.#conflictsOn(unit, home) ? home : null;
    }
    const load = (id: string) => [...this.units.values()].filter((u) => u.machineID === id).length;
    const candidates = this.machines
      .filter((m) => this.#metadataMatches(unit, m) && !this.#conflictsOn(unit, m.id))
      .sort((a, b) => load(a.id) - load(b.id) || a.id.localeCompare(b.id));
    return candidates[0]?.id ?? null;
  }

  #schedule(): void {
    // Unschedule what may no longer stay, then place what waits; repeat so sidekicks follow their peers.
    for (let pass = 0; pass < 10; pass++) {
      let changed = false;
      for (const unit of [...this.units.values()].sort((a, b) => a.name.localeCompare(b.name))) {
        if (isGlobal(unit.options, unit.name)) continue;
        if (unit.desiredState === 'inactive' || /@\.[a-z]+$/.test(unit.name)) {
          if (unit.machineID !== null) { unit.machineID = null; changed = true; }
          continue;
        }
        if (unit.machineID !== null) {
          const peers = xfleet(unit.options, unit.name, 'MachineOf');
          const gone = !this.machines.some((m) => m.id === unit.machineID);
          const peerMoved = peers.some((peer) => this.units.get(peer)?.machineID !== unit.machineID);
          if (gone || peerMoved) { unit.machineID = null; changed = true; }
          continue;
        }
        const home = this.#placeable(unit);
        if (home !== null) { unit.machineID = home; changed = true; }
      }
      if (!changed) return;
    }
  }
}
