// Rolls an app to a new version, one instance at a time, without dropping a
// request: launch a new instance, wait until its announcer has put it in etcd
// and it answers its health check (and a settle time, so every router has it),
// and only then withdraw an old one (its key goes first, in-flight requests
// drain), and stop it. Conflicts=<app>@*.service allows one instance per
// machine, so a new instance needs a machine without one: the rollout surges by
// one and refuses to start when no machine is free.
//
// On any failure or timeout it rolls back: the failed instance is removed,
// every old instance it retired is relaunched from its saved unit and must be
// healthy before a new one is retired, so capacity never drops.
// It never stops an old instance before its replacement serves.
import type { FleetClient, FleetUnit } from './fleet-client.ts';
import type { UnitOption } from '../units/unit-file.ts';
import { sameOptions } from '../units/unit-file.ts';
import { readXFleet } from '../units/xfleet.ts';
import type { RenderedUnit } from '../units/render.ts';
import { InstanceWatch, type InstanceUnits } from './instance-watch.ts';
import type { RolloutConfig } from './deploy-config.ts';

export type RolloutOutcome =
  | { readonly kind: 'completed'; readonly instances: readonly string[] }
  | { readonly kind: 'refused'; readonly reason: string }
  | { readonly kind: 'rolled-back'; readonly reason: string }
  | { readonly kind: 'rollback-failed'; readonly reason: string; readonly rollbackError: string };

export interface RolloutPlan {
  readonly app: string;
  readonly image: string;
  readonly templates: { readonly app: RenderedUnit; readonly announce: RenderedUnit };
  readonly config: RolloutConfig;
}

interface Instance {
  readonly index: number;
  readonly app: readonly UnitOption[];
  readonly announce: readonly UnitOption[];
}

export class Rollout {
  readonly #fleet: FleetClient;
  readonly #watch: InstanceWatch;
  readonly #plan: RolloutPlan;
  readonly #say: (line: string) => void;
  #nextIndex = 1;

  constructor(fleet: FleetClient, watch: InstanceWatch, plan: RolloutPlan, say: (line: string) => void) {
    this.#fleet = fleet;
    this.#watch = watch;
    this.#plan = plan;
    this.#say = (line) => say(`rollout ${plan.app}: ${line}`);
  }

  async run(): Promise<RolloutOutcome> {
    const { app, config } = this.#plan;
    const units = await this.#fleet.listUnits();
    const existing = this.#instances(units);
    const newApp = this.#plan.templates.app.options;
    const newAnnounce = this.#plan.templates.announce.options;
    const isCurrent = (i: Instance) => sameOptions(i.app, newApp) && sameOptions(i.announce, newAnnounce);
    const current = existing.filter(isCurrent);
    const outdated = existing.filter((i) => !isCurrent(i));
    const toLaunch = Math.max(0, config.instances - current.length);
    const excessCurrent = current.slice(config.instances);
    this.#say(`${existing.length} running (${current.length} at ${this.#plan.image}), target ${config.instances}: launching ${toLaunch}, retiring ${outdated.length + excessCurrent.length}`);
    if (toLaunch > 0) {
      const refusal = await this.#freeMachineProblem(units);
      if (refusal !== null) return { kind: 'refused', reason: refusal };
    }

    const launched: Instance[] = [];
    const serving: Instance[] = [];
    const retired: Instance[] = [];
    try {
      for (let step = 1; step <= toLaunch; step++) {
        const instance: Instance = { index: this.#nextIndex++, app: newApp, announce: newAnnounce };
        launched.push(instance);
        await this.#launchAndWait(instance, `[${step}/${toLaunch}]`);
        serving.push(instance);
        const old = outdated.shift();
        if (old !== undefined) {
          await this.#retire(old, `[${step}/${toLaunch}]`);
          retired.push(old);
        }
      }
      for (const old of [...outdated, ...excessCurrent]) {
        await this.#retire(old, '[excess]');
        retired.push(old);
      }
      await this.#fleet.submitUnit(this.#plan.templates.app.name, newApp, 'inactive');
      await this.#fleet.submitUnit(this.#plan.templates.announce.name, newAnnounce, 'inactive');
    } catch (err) {
      const reason = describe(err);
      this.#say(`FAILED: ${reason}`);
      try {
        await this.#rollBack(launched.filter((i) => !serving.includes(i)), serving, retired);
      } catch (rollbackErr) {
        const rollbackError = describe(rollbackErr);
        this.#say(`ROLLBACK FAILED: ${rollbackError}`);
        return { kind: 'rollback-failed', reason, rollbackError };
      }
      this.#say('rolled back: the previous version serves as before');
      return { kind: 'rolled-back', reason };
    }
    const names = [...current.slice(0, config.instances), ...launched].map((i) => this.#names(i.index).app);
    this.#say(`done: ${names.join(', ')} serve ${this.#plan.image}`);
    return { kind: 'completed', instances: names };
  }

  /** Removes what this rollout launched and restores what it retired, one healthy instance before each removal. */
  async #rollBack(failed: Instance[], serving: Instance[], retired: Instance[]): Promise<void> {
    this.#say(`rolling back: restoring ${retired.length} retired instance(s), removing ${failed.length + serving.length} new one(s)`);
    for (const instance of failed) await this.#remove(instance, '[rollback]');
    for (const old of retired.reverse()) {
      const restored: Instance = { index: this.#nextIndex++, app: old.app, announce: old.announce };
      await this.#launchAndWait(restored, '[rollback]');
      const extra = serving.shift();
      if (extra !== undefined) await this.#retire(extra, '[rollback]');
    }
    for (const extra of [...serving]) await this.#retire(extra, '[rollback]');
  }

  async #launchAndWait(instance: Instance, step: string): Promise<void> {
    const names = this.#names(instance.index);
    this.#say(`${step} launching ${names.app}`);
    const since = await this.#watch.revision();
    await this.#fleet.submitUnit(names.app, instance.app, 'launched');
    await this.#fleet.submitUnit(names.announce, instance.announce, 'launched');
    const address = await this.#watch.waitServing(names, this.#plan.app, instance.index, since, (line) => this.#say(`${step} ${line}`));
    this.#say(`${step} ${names.app} serves at ${address}`);
    if (this.#plan.config.settle > 0) await sleep(this.#plan.config.settle);
  }

  /** Withdraw (the announcer's key goes), drain, then stop and destroy. */
  async #retire(instance: Instance, step: string): Promise<void> {
    const names = this.#names(instance.index);
    this.#say(`${step} retiring ${names.app}: withdrawing`);
    await this.#fleet.destroyUnit(names.announce);
    const gone = await this.#watch.waitWithdrawn(this.#plan.app, instance.index);
    if (!gone) this.#say(`${step} ${names.app}: key still in etcd after --withdraw-timeout; its lease will expire`);
    if (this.#plan.config.drain > 0) await sleep(this.#plan.config.drain);
    await this.#fleet.destroyUnit(names.app);
    this.#say(`${step} ${names.app} stopped`);
  }

  /** For an instance that never served: no drain needed. */
  async #remove(instance: Instance, step: string): Promise<void> {
    const names = this.#names(instance.index);
    await this.#fleet.destroyUnit(names.announce);
    await this.#fleet.destroyUnit(names.app);
    this.#say(`${step} ${names.app} removed (it never served)`);
  }

  #names(index: number): InstanceUnits {
    return { app: `${this.#plan.app}@${index}.service`, announce: `${this.#plan.app}-announce@${index}.service` };
  }

  /** Launched instances with their sidekicks; also sets the next free index (instances are never renamed or reused). */
  #instances(units: readonly FleetUnit[]): Instance[] {
    const byName = new Map(units.map((u) => [u.name, u]));
    const escaped = this.#plan.app.replace(/[.]/g, '\\.');
    const pattern = new RegExp(`^${escaped}(?:-announce)?@(\\d+)\\.service$`);
    const instances: Instance[] = [];
    for (const unit of units) {
      const match = pattern.exec(unit.name);
      if (!match) continue;
      const index = Number(match[1]);
      this.#nextIndex = Math.max(this.#nextIndex, index + 1);
      if (unit.name !== `${this.#plan.app}@${index}.service` || unit.desiredState !== 'launched') continue;
      const announce = byName.get(`${this.#plan.app}-announce@${index}.service`);
      instances.push({ index, app: unit.options, announce: announce?.options ?? this.#plan.templates.announce.options });
    }
    return instances.sort((a, b) => a.index - b.index);
  }

  async #freeMachineProblem(units: readonly FleetUnit[]): Promise<string | null> {
    const machines = await this.#fleet.listMachines();
    const metadata = readXFleet(this.#plan.templates.app.options, this.#plan.templates.app.name).machineMetadata;
    const eligible = machines.filter((m) => [...metadata].every(([key, values]) => values.includes(m.metadata[key])));
    const escaped = this.#plan.app.replace(/[.]/g, '\\.');
    const occupied = new Set(units.filter((u) => new RegExp(`^${escaped}@\\d+\\.service$`).test(u.name) && u.machineID).map((u) => u.machineID));
    const free = eligible.filter((m) => !occupied.has(m.id));
    if (free.length > 0) return null;
    return `no free machine: Conflicts=${this.#plan.app}@*.service allows one instance per machine, and a rollout starts each new instance before stopping an old one; ` +
      `${eligible.length} eligible machine(s) all run an instance. Add a machine, or lower --instances first`;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
