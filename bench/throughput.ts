// Throughput scenarios, run as interleaved rounds (A B C, A B C, …) so that a
// machine's drift hits every contender alike; the report keeps each
// contender's median per scenario and its ratio to nginx.
import { HOST, type Contender } from './contenders.ts';
import { median } from './stats.ts';
import { runWrk, type WrkResult } from './wrk.ts';

export interface ThroughputScenario {
  readonly name: string;
  readonly path: string;
  readonly connections: number;
  /** Extra request headers, e.g. `Connection: close` for a new connection per request. */
  readonly headers?: Readonly<Record<string, string>>;
}

export const THROUGHPUT_SCENARIOS: readonly ThroughputScenario[] = [
  { name: 'small c=50', path: '/small', connections: 50 },
  { name: 'small c=200', path: '/small', connections: 200 },
  { name: '16 KiB c=50', path: '/16k', connections: 50 },
  { name: '16 KiB c=200', path: '/16k', connections: 200 },
  { name: '1 MiB c=10', path: '/1m', connections: 10 },
  { name: 'new connection per request c=50', path: '/small', connections: 50, headers: { connection: 'close' } },
];

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
  contenders: readonly Contender[],
  rounds: number,
  seconds: number,
  progress: (line: string) => void,
): Promise<ScenarioResult[]> {
  const results = new Map<string, WrkResult[]>(contenders.map((c) => [c.name, []]));
  for (let round = 0; round < rounds; round++) {
    // Alternate the order each round too, so no contender always runs first after a pause.
    const order = round % 2 === 0 ? contenders : [...contenders].reverse();
    for (const contender of order) {
      const result = await runWrk({
        url: `http://127.0.0.1:${contender.port}${scenario.path}`,
        connections: scenario.connections,
        seconds,
        headers: { Host: HOST, ...scenario.headers },
      });
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
