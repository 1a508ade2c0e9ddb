// One server process a test helper starts, stops and starts again on the same
// ports and data (etcd, an etcd member, Azurite): its output kept in `log`, its
// exit awaited, and ended only by its own pid.
import type { ChildProcess } from 'node:child_process';

export class RestartableProcess {
  log = '';
  readonly #spawn: () => ChildProcess;
  #child: ChildProcess | null = null;
  #exited: Promise<void> = Promise.resolve();

  /** `spawn` starts the process once more, with its stdout and stderr piped. */
  constructor(spawn: () => ChildProcess) {
    this.#spawn = spawn;
  }

  get running(): boolean {
    return this.#child !== null;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the process unless it runs; returns a check that throws (with its log) once that start has exited. */
  start(what: string): () => void {
    const running = this.#child;
    if (running !== null) return () => {};
    const child = this.#spawn();
    child.stdout!.on('data', (d) => { this.log += d; });
    child.stderr!.on('data', (d) => { this.log += d; });
    this.#child = child;
    this.#exited = new Promise((resolve) => child.once('exit', () => resolve()));
    child.once('exit', () => { if (this.#child === child) this.#child = null; });
    return () => {
      if (this.#child !== child) throw new Error(`${what} exited: ${this.log.slice(-2000)}`);
    };
  }

  /** Sends `signal` and waits for the exit (SIGKILL after `killAfter` ms, if given). */
  async stop(signal: NodeJS.Signals, killAfter?: number): Promise<void> {
    const child = this.#child;
    if (child === null) return;
    child.kill(signal);
    const timer = killAfter === undefined ? null : setTimeout(() => child.kill('SIGKILL'), killAfter);
    await this.#exited;
    if (timer !== null) clearTimeout(timer);
    this.#child = null;
  }
}
