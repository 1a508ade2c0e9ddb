// Starting and ending the benchmark's helper processes (nginx, HAProxy, the
// router) by pid, and reading their CPU time and memory from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'undici';

export interface Started {
  readonly child: ChildProcess;
  output: string;
  stop(): Promise<void>;
}

export function startProcess(command: string, args: readonly string[], env: NodeJS.ProcessEnv = {}): Started {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const started: Started = {
    child,
    output: '',
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const keep = (d: Buffer) => {
    started.output = (started.output + d.toString()).slice(-20_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  return started;
}

/** The pid and its descendants (workers), from /proc. */
export function processTree(pid: number): number[] {
  const out = [pid];
  for (let i = 0; i < out.length; i++) {
    let children = '';
    try {
      children = readFileSync(`/proc/${out[i]}/task/${out[i]}/children`, 'utf8');
    } catch {}
    for (const c of children.trim().split(/\s+/)) if (c) out.push(Number(c));
  }
  return out;
}

/** User+system CPU seconds of the processes. */
export function cpuSeconds(pids: readonly number[]): number {
  const { user, system } = cpuTimes(pids);
  return user + system;
}

/** User and system CPU seconds of the processes, apart. */
export function cpuTimes(pids: readonly number[]): { user: number; system: number } {
  let user = 0;
  let system = 0;
  for (const pid of pids) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      user += Number(fields[11]);
      system += Number(fields[12]);
    } catch {}
  }
  return { user: user / 100, system: system / 100 };
}

/**
 * User+system CPU seconds of this process's children that have ended and
 * been waited for (short-lived clients such as skopeo): the kernel adds them
 * up in /proc/self/stat.
 */
export function endedChildrenCpuSeconds(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) / 100;
}

/** Resident memory, bytes. */
export function rss(pid: number): number {
  try {
    const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Waits for 200 from `url`; if it never comes, stops `owner` and fails with its output. */
export async function waitStarted(owner: Started, url: string, headers: Record<string, string> = {}): Promise<void> {
  try {
    await waitHttp(url, 20_000, headers);
  } catch (err) {
    await owner.stop();
    throw new Error(`${(err as Error).message}\n${owner.output}`);
  }
}

export async function waitHttp(url: string, timeout = 20_000, headers: Record<string, string> = {}): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      // undici's request, not fetch: fetch drops a Host header.
      const res = await request(url, { headers });
      await res.body.dump();
      if (res.statusCode === 200) return;
    } catch {}
    if (Date.now() > deadline) throw new Error(`${url} did not answer 200 within ${timeout} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
