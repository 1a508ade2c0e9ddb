// A `tug` command the tests run as a child process (router, registry,
// announcer): its output, its JSON log lines, its exit, and a stop that ends it
// by its pid (SIGKILL if it has not exited after `killAfter` ms).
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const TUG = fileURLToPath(new URL('../../bin/tug.ts', import.meta.url));

/** Starts a process (node's spawn, or `ip netns exec` inside a cluster host). */
export type Spawner = (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess;

export class TugProcess {
  readonly child: ChildProcess;
  /** The exit code (null after a signal). */
  readonly exited: Promise<number | null>;
  output = '';
  readonly #killAfter: number;

  constructor(child: ChildProcess, killAfter = 20_000) {
    this.child = child;
    this.#killAfter = killAfter;
    child.stdout!.on('data', (d) => { this.output += d; });
    child.stderr!.on('data', (d) => { this.output += d; });
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
  }

  /** Parsed JSON log lines so far (a line cut short by the process's end reads as {}). */
  logs(): Record<string, unknown>[] {
    return this.output.split('\n').filter((l) => l.startsWith('{')).map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        return {};
      }
    });
  }

  /** SIGTERM (graceful), or another signal, and wait for the exit; returns the exit code. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), this.#killAfter);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
