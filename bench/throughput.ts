// Throughput scenarios, run as interleaved rounds (A B C, A B C, …) so that a
// machine's drift hits every contender alike; the report keeps each
// contender's median per scenario and its ratio to nginx. HTTPS scenarios run
// on the contenders started with an HTTPS listener only: HTTP/1.1 over TLS with
// wrk, HTTP/2 with h2load.
import { HOST, type Contender } from './contenders.ts';
import { runH2load } from './h2load.ts';
import { median } from './stats.ts';
import { runWrk, type WrkResult } from './wrk.ts';

export interface ThroughputScenario {
  readonly name: string;
  readonly path: string;
  readonly connections: number;
  /** Extra request headers, e.g. `Connection: close` for a new connection per request. */
  readonly headers?: Readonly<Record<string, string>>;
  /** http (default): wrk on the plain port; https: wrk on the HTTPS port (HTTP/1.1); h2: h2load on the HTTPS port. */
  readonly protocol?: 'http' | 'https' | 'h2';
  /** Concurrent streams per connection (h2). */
  readonly streams?: number;
}

export const THROUGHPUT_SCENARIOS: readonly ThroughputScenario[] = [
  { name: 'small c=50', path: '/small', connections: 50 },
  { name: 'small c=200', path: '/small', connections: 200 },
  { name: '16 KiB c=50', path: '/16k', connections: 50 },
  { name: '16 KiB c=200', path: '/16k', connections: 200 },
  { name: '1 MiB c=10', path: '/1m', connections: 10 },
  { name: 'new connection per request c=50', path: '/small', connections: 50, headers: { connection: 'close' } },
  // wrk keeps each connection's TLS session and offers it on the next connection (checked by main.ts, tls-resumption.ts).
  { name: 'TLS resumed, new connection per request c=50', path: '/small', connections: 50, protocol: 'https', headers: { connection: 'close' } },
  { name: 'TLS keep-alive small c=50', path: '/small', connections: 50, protocol: 'https' },
  { name: 'HTTP/2 small c=50 m=10', path: '/small', connections: 50, protocol: 'h2', streams: 10 },
];

/** The contenders a scenario runs on: all for plain HTTP, those with an HTTPS listener for the others. */
export function contendersFor(scenario: ThroughputScenario, contenders: readonly Contender[]): Contender[] {
  return (scenario.protocol ?? 'http') === 'http' ? [...contenders] : contenders.filter((c) => c.tlsPort !== undefined);
}

async function runOnce(scenario: ThroughputScenario, contender: Contender, seconds: number): Promise<WrkResult> {
  const protocol = scenario.protocol ?? 'http';
  if (protocol === 'h2') {
    return runH2load({ url: `https://127.0.0.1:${contender.tlsPort}${scenario.path}`, authority: HOST, clients: scenario.connections, streams: scenario.streams ?? 1, seconds });
  }
  return runWrk({
    url: `${protocol}://127.0.0.1:${protocol === 'https' ? contender.tlsPort : contender.port}${scenario.path}`,
    connections: scenario.connections,
    seconds,
    headers: { Host: HOST, ...scenario.headers },
  });
}

export interface ScenarioResult {
  readonly scenario: string;
  readonly contender: string;
  readonly rounds: readonly WrkResult[];
  readonly rps: number;
  readonly p99: number;
  readonly errors: number;
}

export async function runThroughput(
  scenario: ThroughputScenario,
  all: readonly Contender[],
  rounds: number,
  seconds: number,
  progress: (line: string) => void,
  starting: (round: number, contender: string) => void = () => {},
): Promise<ScenarioResult[]> {
  const contenders = contendersFor(scenario, all);
  const results = new Map<string, WrkResult[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round++) {
    // Alternate the order each round too, so no contender always runs first after a pause.
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const contender of order) {
      starting(round + 1, contender.name);
      const result = await runOnce(scenario, contender, seconds);
      results.get(contender.name)!.push(result);
      progress(`  ${scenario.name} round ${round + 1}/${rounds} ${contender.name}: ${Math.round(result.rps)} req/s, p99 ${result.p99.toFixed(2)} ms${result.errors ? `, ${result.errors} errors` : ''}`);
    }
  }
  return contenders.map((c) => {
    const rs = results.get(c.name)!;
    return {
      scenario: scenario.name,
      contender: c.name,
      rounds: rs,
      rps: median(rs.map((r) => r.rps)),
      p99: median(rs.map((r) => r.p99)),
      errors: rs.reduce((sum, r) => sum + r.errors, 0),
    };
  });
}
