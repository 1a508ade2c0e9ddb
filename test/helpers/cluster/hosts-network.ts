// The cluster's virtual hosts: one Linux network namespace per host, each with
// a veth link to a bridge in the root namespace (where the test, the load
// balancer, the load generator and Azurite run), so hosts reach each other and
// the root namespace at their own addresses, and a host can be cut off by
// taking its link down. Needs root and iproute2; without them it falls back to
// loopback addresses (127.0.0.x, one per host) and says so; hosts cannot be cut
// off then (freezing a host's processes is no substitute: its kernel still
// accepts connections, so it looks hung, not unreachable).
//
// It creates only names carrying this process's pid (`tug<pid>…`), deletes
// exactly what it created (on close() and on process exit, even after a
// failure), and never targets an address outside its own hosts.
import { execFileSync, spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';

export interface ClusterHost {
  /** h1, h2, … */
  readonly name: string;
  /** The host's address, as the other hosts and the root namespace reach it. */
  readonly address: string;
  /** Its network namespace, null in the loopback fallback. */
  readonly netns: string | null;
  /** The root-namespace end of its veth link, null in the loopback fallback. */
  readonly link: string | null;
}

export class HostsNetwork {
  readonly hosts: readonly ClusterHost[];
  /** The root namespace's address on the hosts' network (Azurite, the "outside world", listens here). */
  readonly rootAddress: string;
  /** True when the hosts are network namespaces, false in the loopback fallback. */
  readonly namespaces: boolean;
  /** Why the loopback fallback was used (null with namespaces). */
  readonly fallbackReason: string | null;
  readonly #bridge: string | null;
  /** Processes started in each host, by host name: killed on close. */
  readonly #processes = new Map<string, Set<ChildProcess>>();
  #closed = false;
  readonly #onExit = () => this.#removeSync();
  /** Interrupted (Ctrl-C, a runner's SIGTERM): 'exit' does not fire on a signal, so clean up, then die of it. */
  readonly #onSignal = (signal: NodeJS.Signals) => {
    this.#removeSync();
    process.kill(process.pid, signal);
  };
  /** More to do on close and on exit (processes outside the hosts), synchronously. */
  readonly #cleanups: (() => void)[] = [];

  private constructor(hosts: ClusterHost[], rootAddress: string, bridge: string | null, fallbackReason: string | null) {
    this.hosts = hosts;
    this.rootAddress = rootAddress;
    this.#bridge = bridge;
    this.namespaces = bridge !== null;
    this.fallbackReason = fallbackReason;
    for (const host of hosts) this.#processes.set(host.name, new Set());
    process.on('exit', this.#onExit);
    process.once('SIGINT', this.#onSignal);
    process.once('SIGTERM', this.#onSignal);
  }

  /** Makes `count` hosts: namespaces when possible, else loopback addresses. */
  static create(count: number, log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): HostsNetwork {
    const reason = namespaceUnavailable();
    if (reason === null) {
      try {
        return HostsNetwork.#createNamespaces(count);
      } catch (err) {
        log(`cluster: network namespaces failed (${(err as Error).message.split('\n')[0]}); falling back to loopback addresses`);
        return HostsNetwork.#createLoopback(count, `namespaces failed: ${(err as Error).message.split('\n')[0]}`);
      }
    }
    log(`cluster: ${reason}; the hosts are loopback addresses 127.0.0.11.. instead of network namespaces`);
    return HostsNetwork.#createLoopback(count, reason);
  }

  static #createLoopback(count: number, reason: string): HostsNetwork {
    const hosts = Array.from({ length: count }, (_, i) => ({ name: `h${i + 1}`, address: `127.0.0.${11 + i}`, netns: null, link: null }));
    return new HostsNetwork(hosts, '127.0.0.1', null, reason);
  }

  static #createNamespaces(count: number): HostsNetwork {
    const tag = `tug${process.pid}`;
    const subnet = freeSubnet();
    const bridge = `${tag}br`;
    const hosts = Array.from({ length: count }, (_, i) => ({
      name: `h${i + 1}`,
      address: `${subnet}.${11 + i}`,
      netns: `${tag}-h${i + 1}`,
      link: `${tag}h${i + 1}`,
    }));
    const network = new HostsNetwork(hosts, `${subnet}.1`, bridge, null);
    try {
      ip('link', 'add', bridge, 'type', 'bridge');
      ip('addr', 'add', `${subnet}.1/24`, 'dev', bridge);
      ip('link', 'set', bridge, 'up');
      for (const host of hosts) {
        const ns = host.netns, link = host.link;
        ip('netns', 'add', ns);
        ip('link', 'add', link, 'type', 'veth', 'peer', 'name', `${link}p`);
        ip('link', 'set', `${link}p`, 'netns', ns);
        ip('-n', ns, 'link', 'set', `${link}p`, 'name', 'eth0');
        ip('-n', ns, 'addr', 'add', `${host.address}/24`, 'dev', 'eth0');
        ip('-n', ns, 'link', 'set', 'eth0', 'up');
        ip('-n', ns, 'link', 'set', 'lo', 'up');
        ip('link', 'set', link, 'master', bridge);
        ip('link', 'set', link, 'up');
      }
    } catch (err) {
      network.#removeSync();
      throw err;
    }
    return network;
  }

  host(name: string): ClusterHost {
    const host = this.hosts.find((h) => h.name === name);
    if (!host) throw new Error(`no host ${name}`);
    return host;
  }

  /** Spawns `command` inside `host` (`ip netns exec`, which execs: the pid is the command's), and remembers it. */
  spawn(host: ClusterHost, command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = host.netns === null
      ? spawn(command, args, options)
      : spawn('ip', ['netns', 'exec', host.netns, command, ...args], options);
    const set = this.#processes.get(host.name)!;
    set.add(child);
    child.once('exit', () => set.delete(child));
    return child;
  }

  /** Command-line prefix that runs a command in `host` (for execFile). */
  prefix(host: ClusterHost): string[] {
    return host.netns === null ? [] : ['ip', 'netns', 'exec', host.netns];
  }

  /** Cuts every link of `host`: nothing reaches it, it reaches nothing (no resets: packets are lost). Namespaces only. */
  cut(host: ClusterHost): void {
    if (host.link === null) throw new Error('hosts can be cut off only in network namespaces');
    ip('link', 'set', host.link, 'down');
  }

  /** Restores `host`'s link. */
  restore(host: ClusterHost): void {
    if (host.link !== null) ip('link', 'set', host.link, 'up');
  }

  /** Runs `cleanup` (synchronous) when the hosts are removed, on close() or at exit. */
  onRemove(cleanup: () => void): void {
    this.#cleanups.push(cleanup);
  }

  /** Kills whatever is still running in the hosts (by pid) and deletes the namespaces and links made here. */
  close(): void {
    this.#removeSync();
  }

  #removeSync(): void {
    if (this.#closed) return;
    this.#closed = true;
    process.off('exit', this.#onExit);
    process.off('SIGINT', this.#onSignal);
    process.off('SIGTERM', this.#onSignal);
    for (const cleanup of this.#cleanups) {
      try {
        cleanup();
      } catch {
        // best effort: the rest must still be removed
      }
    }
    for (const set of this.#processes.values()) {
      for (const child of set) {
        if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) continue;
        try {
          process.kill(child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
    }
    if (this.#bridge === null) return;
    for (const host of this.hosts) {
      // Deleting the namespace deletes its end of the veth pair, and with it the pair.
      tryIp('netns', 'del', host.netns!);
      tryIp('link', 'del', host.link!);
    }
    tryIp('link', 'del', this.#bridge);
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
}

function tryIp(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // not there (never made, or gone with its namespace)
  }
}

/** Why namespaces cannot be made here, or null when they can. */
function namespaceUnavailable(): string | null {
  if (process.env.TUG_CLUSTER_LOOPBACK) return 'TUG_CLUSTER_LOOPBACK is set';
  if (process.platform !== 'linux') return 'not Linux';
  if (process.getuid?.() !== 0) return 'not root';
  try {
    execFileSync('ip', ['-V'], { stdio: 'ignore' });
  } catch {
    return '`ip` (iproute2) is missing';
  }
  return null;
}

/** A 10.x.y.0/24 no interface of this machine is on, chosen from the pid. */
function freeSubnet(): string {
  let used = '';
  try {
    used = execFileSync('ip', ['-4', '-o', 'addr'], { encoding: 'utf8' }) + execFileSync('ip', ['-4', 'route'], { encoding: 'utf8' });
  } catch {
    used = readFileSync('/proc/net/route', 'utf8');
  }
  for (let attempt = 0; attempt < 200; attempt++) {
    const subnet = `10.${200 + ((process.pid + attempt) % 50)}.${(process.pid * 7 + attempt) % 250}`;
    if (!used.includes(`${subnet}.`)) return subnet;
  }
  throw new Error('no free 10.x.y.0/24 subnet');
}
