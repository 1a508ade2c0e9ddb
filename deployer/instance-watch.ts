// Watches one app instance through fleet and etcd for the rollout: "serving"
// means fleet runs its units, its announcer has put /services/<app>/<i> in etcd
// (it does so only while the app passes its health check), and — unless turned
// off — the instance answers the same health check from here too. A unit that
// fleet reports failed ends the wait at once instead of at the timeout.
import type { BackendSpec } from '../router/etcd/route-keys.ts';
import type { Announcements } from './announcements.ts';
import type { FleetClient } from './fleet-client.ts';

export interface InstanceUnits {
  readonly app: string;
  readonly announce: string;
}

export interface InstanceWatchOptions {
  readonly timeout: number;
  readonly withdrawTimeout: number;
  readonly pollInterval: number;
  /** null: trust the announcement alone. */
  readonly probe: ((backend: BackendSpec) => Promise<boolean>) | null;
}

export class InstanceWatch {
  readonly #fleet: FleetClient;
  readonly #announcements: Announcements;
  readonly #options: InstanceWatchOptions;

  constructor(fleet: FleetClient, announcements: Announcements, options: InstanceWatchOptions) {
    this.#fleet = fleet;
    this.#announcements = announcements;
    this.#options = options;
  }

  /** etcd's revision now: taken before launching, so only an announcement made after it counts. */
  revision(): Promise<bigint> {
    return this.#announcements.revision();
  }

  /**
   * Resolves with the announced address once the instance serves; rejects on
   * failure or timeout. Only a key created after `since` counts: a name can
   * come back, and a killed announcer's key lives until its lease expires.
   */
  async waitServing(units: InstanceUnits, app: string, index: number, since: bigint, say: (line: string) => void): Promise<string> {
    const deadline = Date.now() + this.#options.timeout;
    let phase = '';
    const enter = (next: string) => {
      if (next !== phase) say(next);
      phase = next;
    };
    while (Date.now() < deadline) {
      const unit = await this.#fleet.getUnit(units.app);
      if (unit === null) throw new Error(`${units.app} was destroyed while the rollout waited for it`);
      for (const name of [units.app, units.announce]) {
        const failed = (await this.#fleet.listUnitStates({ unitName: name })).find((s) => s.systemdActiveState === 'failed');
        if (failed) throw new Error(`${name} failed on machine ${failed.machineID} (${failed.systemdSubState})`);
      }
      if (unit.machineID === undefined) {
        enter(`${units.app} waits for a machine`);
      } else {
        let backend: BackendSpec | null = null;
        try {
          const found = await this.#announcements.get(app, String(index));
          if (found !== null && found.createRevision > since) backend = found.backend;
        } catch (err) {
          enter(`etcd does not answer: ${(err as Error).message}`);
        }
        if (backend === null) {
          if (!phase.startsWith('etcd')) enter(`${units.app} runs on ${unit.machineID.slice(0, 8)}; waiting for its announcement`);
        } else {
          const address = backend.host.includes(':') ? `[${backend.host}]:${backend.port}` : `${backend.host}:${backend.port}`;
          if (this.#options.probe === null || await this.#options.probe(backend)) return address;
          enter(`${units.app} announced at ${address} but does not answer its health check here`);
        }
      }
      await sleep(Math.min(this.#options.pollInterval, Math.max(0, deadline - Date.now())));
    }
    throw new Error(`${units.app} did not serve within ${this.#options.timeout} ms (last: ${phase || 'nothing yet'})`);
  }

  /** true once the instance's key has left etcd; false if it is still there after the withdraw timeout. */
  async waitWithdrawn(app: string, index: number): Promise<boolean> {
    const deadline = Date.now() + this.#options.withdrawTimeout;
    for (;;) {
      try {
        if (await this.#announcements.get(app, String(index)) === null) return true;
      } catch {
        // etcd unreachable: keep waiting until the deadline, then go on (the lease expires on its own).
      }
      if (Date.now() >= deadline) return false;
      await sleep(this.#options.pollInterval);
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
