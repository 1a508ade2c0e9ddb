// Runs the real `tug announce` sidekick as a child process and ends it by its pid.
import { spawn } from 'node:child_process';
import { TUG, TugProcess, type Spawner } from './tug-process.ts';

export class AnnouncerProcess extends TugProcess {
  /** `spawner` starts the process (e.g. inside a network namespace); node's spawn by default. */
  constructor(args: readonly string[], env: NodeJS.ProcessEnv = {}, spawner: Spawner = spawn) {
    super(spawner(process.execPath, [TUG, 'announce', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } }), 10_000);
  }
}
