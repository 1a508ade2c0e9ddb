// Runs the real `tug announce` sidekick as a child process and ends it by its pid.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const TUG = fileURLToPath(new URL('../../bin/tug.ts', import.meta.url));

export class AnnouncerProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<number | null>;
  output = '';

  /** `spawner` starts the process (e.g. inside a network namespace); node's spawn by default. */
  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}, spawner: (command: string, args: readonly string[], options: SpawnOptions) => ChildProcess = spawn) {
    this.child = spawner(process.execPath, [TUG, 'announce', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    this.child.stdout!.on('data', (d) => { this.output += d; });
    this.child.stderr!.on('data', (d) => { this.output += d; });
    this.exited = new Promise((resolve) => this.child.once('exit', (code) => resolve(code)));
  }

  logs(): Record<string, unknown>[] {
    return this.output.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<number | null> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}
