// Runs nghttp2's h2load (Debian's nghttp2-client) for a fixed duration and
// reads its summary. h2load prints no latency percentiles, only min/max/mean/sd
// of "time for request"; so it writes one line per request (--log-file) and the
// percentiles here are computed from those lines: the time from a request's
// start to the end of its response, as h2load measures it.
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { percentile } from './stats.ts';
import type { WrkResult } from './wrk.ts';

const run = promisify(execFile);

export interface H2loadOptions {
  /** https://127.0.0.1:port/path; its port is where h2load connects. */
  readonly url: string;
  /** The :authority (HTTP/2) or Host (HTTP/1.1) to send instead of the URL's. */
  readonly authority: string;
  readonly clients: number;
  /** Concurrent streams per connection (HTTP/2). */
  readonly streams: number;
  readonly seconds: number;
}

/** Same shape as wrk's result, so both feed one report; p50/p90/p99 from h2load's per-request log. */
export async function runH2load(o: H2loadOptions): Promise<WrkResult> {
  const dir = mkdtempSync(join(tmpdir(), 'tug-h2load-'));
  const log = join(dir, 'requests.log');
  try {
    const { stdout } = await run('h2load', [
      '-t', '1', '-c', String(o.clients), '-m', String(o.streams), '-D', String(o.seconds),
      '--npn-list', 'h2', '-H', `:authority: ${o.authority}`, '--log-file', log, o.url,
    ], { timeout: (o.seconds + 30) * 1000, maxBuffer: 16 * 1024 * 1024 });
    return parseH2load(stdout, readFileSync(log, 'utf8'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `summary`: h2load's stdout; `log`: its --log-file (start µs, status, µs to the end of the response). */
export function parseH2load(summary: string, log: string): WrkResult {
  const requests = /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/.exec(summary);
  const codes = /status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/.exec(summary);
  const rps = /finished in [\d.]+\w+, ([\d.]+) req\/s/.exec(summary);
  if (!requests || !codes || !rps) throw new Error(`cannot read h2load's output:\n${summary}`);
  const times: number[] = [];
  for (const line of log.split('\n')) {
    const [, status, micros] = line.split('\t');
    if (micros !== undefined && Number(status) > 0) times.push(Number(micros) / 1000);
  }
  return {
    rps: Number(rps[1]),
    p50: percentile(times, 50),
    p90: percentile(times, 90),
    p99: percentile(times, 99),
    requests: Number(requests[3]),
    errors: Number(requests[5]) + Number(requests[6]) + Number(requests[7]) + Number(codes[3]) + Number(codes[4]),
  };
}
