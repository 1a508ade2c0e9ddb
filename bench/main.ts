// `npm run bench`: Tug's router against nginx (and HAProxy, and node-min, the
// minimal Node proxy that shows the floor) on this machine.
// Starts everything itself (etcd, nginx upstreams, the contenders), runs the
// scenarios, prints the ratio table and writes results.{json,md,svg}.
//
// Settings (flag, or environment variable):
//   --quick            BENCH_QUICK=1      ~1 minute: 2 scenarios, 3 rounds of 3 s (no TLS, HTTP/2;
//                                         `--quick --only TLS` runs those quickly)
//   --rounds N         BENCH_ROUNDS       interleaved rounds per scenario (default 5)
//   --seconds N        BENCH_SECONDS      wrk duration per run (default 10)
//   --workers N        BENCH_WORKERS      workers for every contender (default 2)
//   --only REGEX       BENCH_ONLY         throughput scenarios to run (by name)
//   --out DIR          BENCH_OUT          where results go (default bench/results)
//   --skip LIST        BENCH_SKIP         comma list of: haproxy, node-min, convergence, churn, scale, idle,
//                                         registry (left out by --quick too)
//   --runtime NODE     BENCH_RUNTIME      also run Tug's router under this Node binary, as contender
//                                         tug@<major> (e.g. tug@26), in the same rounds
import { chmodSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { Etcd3 } from 'etcd3';
import { TestCertificates } from '../test/helpers/certificates.ts';
import { EtcdServer } from '../test/helpers/etcd.ts';
import { freePort } from '../test/helpers/ports.ts';
import { HOST, haproxyAvailable, describeRuntime, startHaproxy, startNginx, startNodeMin, startTug, type Contender, type ContenderSetup, type TlsSetup } from './contenders.ts';
import { measureChurn } from './churn.ts';
import { measureConvergence } from './convergence.ts';
import { measureIdleConnections } from './idle-connections.ts';
import { BenchProgress } from './progress.ts';
import { ratioTable, writeReport } from './report.ts';
import { measureRegistry, registryTable } from './registry.ts';
import { loadBackends, measureScale } from './scale.ts';
import { contendersFor, runThroughput, THROUGHPUT_SCENARIOS, type ScenarioResult } from './throughput.ts';
import { measureResumption, resumptionNote } from './tls-resumption.ts';
import { startUpstreams } from './upstreams.ts';
import { runWrk } from './wrk.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: process.env.BENCH_QUICK === '1' },
    rounds: { type: 'string', default: process.env.BENCH_ROUNDS },
    seconds: { type: 'string', default: process.env.BENCH_SECONDS },
    workers: { type: 'string', default: process.env.BENCH_WORKERS ?? '2' },
    only: { type: 'string', default: process.env.BENCH_ONLY },
    out: { type: 'string', default: process.env.BENCH_OUT ?? fileURLToPath(new URL('./results', import.meta.url)) },
    skip: { type: 'string', default: process.env.BENCH_SKIP ?? '' },
    runtime: { type: 'string', default: process.env.BENCH_RUNTIME || undefined },
  },
});
const quick = values.quick!;
const rounds = Number(values.rounds ?? (quick ? 3 : 5));
const seconds = Number(values.seconds ?? (quick ? 3 : 10));
const workers = Number(values.workers);
const skip = new Set(values.skip!.split(',').filter(Boolean));
const only = values.only ? new RegExp(values.only, 'i') : quick ? /^(small c=50|16 KiB c=200)$/ : null;
const runtime = values.runtime === undefined ? null : describeRuntime(values.runtime);
const scenarios = THROUGHPUT_SCENARIOS.filter((s) => !only || only.test(s.name));
const progress = new BenchProgress();
const log = (line: string) => progress.line(line);

const dir = mkdtempSync(join(tmpdir(), 'tug-bench-'));
// nginx workers run as an unprivileged user and must read the upstream files.
chmodSync(dir, 0o755);
const stops: (() => Promise<void>)[] = [];
const stopAll = async () => {
  for (const stop of stops.reverse()) await stop().catch(() => {});
  rmSync(dir, { recursive: true, force: true });
};
process.on('SIGINT', () => void stopAll().then(() => process.exit(130)));

try {
  log(`bench: ${rounds} rounds × ${seconds} s, ${workers} workers per contender${quick ? ' (quick)' : ''}`);
  const etcdServer = await EtcdServer.start();
  stops.push(() => etcdServer.close());
  const etcd = new Etcd3({ hosts: etcdServer.endpoint });
  stops.push(async () => etcd.close());
  const upstreamPorts = [await freePort(), await freePort(), await freePort()];
  const upstreams = await startUpstreams(dir, upstreamPorts);
  stops.push(() => upstreams.process.stop());
  const [a, b, extra] = upstreamPorts.map((p) => `127.0.0.1:${p}`);
  await etcd.put('/services/bench/@1').value(a);
  await etcd.put('/services/bench/@2').value(b);

  // HTTPS listeners only when a TLS or HTTP/2 scenario runs: one certificate for bench.bench and 127.0.0.1
  // (wrk sends the URL's IP as SNI), EC P-256 like most sites' today.
  let certificate: { certFile: string; keyFile: string } | null = null;
  if (scenarios.some((s) => (s.protocol ?? 'http') !== 'http')) {
    const certificates = await TestCertificates.create();
    stops.push(() => certificates.close());
    certificate = await certificates.issue(HOST, [HOST], { ips: ['127.0.0.1'] });
  }
  const setup = async (https = false): Promise<ContenderSetup> => ({
    dir, port: await freePort(), adminPort: await freePort(), upstreams: upstreamPorts.slice(0, 2), workers,
    keepalive: Math.max(256, ...scenarios.map((s) => s.connections)), etcd: etcdServer.endpoint,
    tls: https && certificate !== null ? { port: await freePort(), ...certificate } satisfies TlsSetup : null,
  });
  const contenders: Contender[] = [];
  const start = async (starter: (s: ContenderSetup) => Promise<Contender>, https: boolean) => {
    const contender = await starter(await setup(https));
    stops.push(() => contender.process.stop());
    contenders.push(contender);
  };
  await start(startNginx, true);
  await start(startTug, true);
  if (runtime !== null) {
    log(`bench: ${runtime.name} is Tug's router run by ${runtime.node} (${runtime.version})`);
    await start((s) => startTug(s, [], runtime.name, runtime.node), true);
  }
  if (!skip.has('node-min')) await start(startNodeMin, true);
  if (!skip.has('haproxy') && haproxyAvailable()) await start(startHaproxy, true);
  const tug = contenders.find((c) => c.name === 'tug')!;

  log('bench: warm-up');
  for (const c of contenders) await runWrk({ url: `http://127.0.0.1:${c.port}/small`, connections: 50, seconds: 2, headers: { Host: HOST } });

  const throughput: ScenarioResult[] = [];
  for (const [index, scenario] of scenarios.entries()) {
    log(`bench: ${scenario.name}`);
    throughput.push(...await runThroughput(scenario, contenders, rounds, seconds, log, (round, contender) => {
      progress.status(`bench: scenario ${index + 1}/${scenarios.length} ${scenario.name}: round ${round}/${rounds}, ${contender} (${seconds} s)`);
    }));
  }
  progress.done();
  const extra_: Record<string, unknown> = {};
  const notes: string[] = [];
  const sections: { heading: string; markdown: string }[] = [];
  const resumedScenario = scenarios.find((s) => s.protocol === 'https' && s.headers?.connection === 'close');
  if (resumedScenario !== undefined) {
    log('bench: TLS resumption check (wrk through a relay that reads each ClientHello and ServerHello)');
    const counts = await measureResumption(contendersFor(resumedScenario, contenders), resumedScenario, log);
    extra_['TLS resumption achieved by wrk'] = counts;
    notes.push(resumptionNote(resumedScenario.name, counts));
  }
  if (!skip.has('convergence')) {
    log('bench: route convergence');
    extra_['route convergence'] = await measureConvergence(etcd, tug.port, a, quick ? 20 : 200);
  }
  if (!skip.has('churn')) {
    log('bench: churn (a backend added and removed 10×/s under load)');
    extra_.churn = await measureChurn(etcd, tug, extra, quick ? 3 : 10);
  }
  if (!skip.has('idle')) {
    // On a router of its own: the one that ran the throughput rounds still holds the heap they grew.
    log('bench: RSS with 10k idle keep-alive connections (a fresh tug)');
    const fresh = await startTug(await setup());
    try {
      extra_['10k idle connections'] = await measureIdleConnections(fresh, 10_000);
    } finally {
      await fresh.process.stop();
    }
  }
  if (!skip.has('scale')) {
    const services = quick ? 1000 : 10_000;
    log(`bench: scale (${services} services × 5 backends)`);
    await loadBackends(etcd, services, 5);
    extra_.scale = await measureScale(etcd, async () => startTug(await setup()), services, 5, quick ? 200 : 1000);
  }

  if (!skip.has('registry') && !quick) {
    log('bench: registry (skopeo push and pull of a 100 MiB image)');
    const registry = await measureRegistry(Math.min(rounds, 3), log);
    extra_.registry = registry;
    sections.push({ heading: 'Registry', markdown: registryTable(registry) });
  }

  log('');
  log(ratioTable(throughput));
  for (const section of sections) log(`\n${section.markdown}`);
  for (const [name, value] of Object.entries(extra_)) log(`\n${name}: ${JSON.stringify(value)}`);
  mkdirSync(values.out!, { recursive: true });
  const files = writeReport(values.out!, {
    machine: {
      cpus: cpus().length, cpu: cpus()[0]?.model ?? 'unknown', memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString().slice(0, 10),
      ...(runtime === null ? {} : { [runtime.name]: `${runtime.node} ${runtime.version}` }),
    },
    settings: {
      rounds, seconds, workers, quick, wrk: 'wrk -t1 --latency, keep-alive', accessLogs: 'off for every contender',
      ...(certificate === null ? {} : { tls: 'TLS 1.2/1.3, EC P-256 certificate, resumption on; h2load -t1 -m10 -D, p50/p99 from its --log-file' }),
    },
    throughput,
    extra: extra_,
    sections,
    notes,
  });
  log(`\nbench: wrote ${files.markdown}, ${files.json}, ${files.svg}`);
} finally {
  await stopAll();
}
