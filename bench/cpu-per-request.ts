// A profiling aid, not part of `npm run bench`: CPU time each contender spends
// per proxied request (user+system, all its processes), measured over one wrk run:
// nginx, tug, and node-min (the minimal Node proxy, minimal-proxy.ts); with
// BENCH_RUNTIME=/path/to/node, also tug@<major>, Tug's router under that Node.
// Usage: node bench/cpu-per-request.ts [connections] [seconds] [path: /small, /16k or /1m]
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { EtcdServer } from '../test/helpers/etcd.ts';
import { freePort } from '../test/helpers/ports.ts';
import { describeRuntime, HOST, startNginx, startNodeMin, startTug, type Contender } from './contenders.ts';
import { cpuSeconds, cpuTimes, processTree } from './processes.ts';
import { startUpstreams } from './upstreams.ts';
import { runWrk } from './wrk.ts';

const connections = Number(process.argv[2] ?? 50);
const seconds = Number(process.argv[3] ?? 5);
const path = process.argv[4] ?? '/small';
const dir = mkdtempSync(join(tmpdir(), 'tug-cpu-'));
chmodSync(dir, 0o755);
const etcdServer = await EtcdServer.start();
const etcd = new Etcd3({ hosts: etcdServer.endpoint });
const ports = [await freePort(), await freePort()];
const upstreams = await startUpstreams(dir, ports);
await etcd.put('/services/bench/@1').value(`127.0.0.1:${ports[0]}`);
await etcd.put('/services/bench/@2').value(`127.0.0.1:${ports[1]}`);
const setup = async () => ({ dir, port: await freePort(), adminPort: await freePort(), upstreams: ports, workers: 2, keepalive: 512, etcd: etcdServer.endpoint });
const contenders: Contender[] = [
  await startNginx(await setup()),
  await startTug(await setup(), process.env.TUG_ARGS?.split(' ').filter(Boolean) ?? []),
  await startNodeMin(await setup()),
];
if (process.env.BENCH_RUNTIME) {
  const runtime = describeRuntime(process.env.BENCH_RUNTIME);
  contenders.push(await startTug(await setup(), process.env.TUG_ARGS?.split(' ').filter(Boolean) ?? [], runtime.name, runtime.node));
}
try {
  for (const c of contenders) {
    await runWrk({ url: `http://127.0.0.1:${c.port}${path}`, connections, seconds: 2, headers: { Host: HOST } });
    const pids = processTree(c.pid);
    const before = cpuTimes(pids);
    const upBefore = cpuSeconds(processTree(upstreams.process.child.pid!));
    const r = await runWrk({ url: `http://127.0.0.1:${c.port}${path}`, connections, seconds, headers: { Host: HOST } });
    const after = cpuTimes(pids);
    const user = after.user - before.user;
    const system = after.system - before.system;
    const cpu = user + system;
    const up = cpuSeconds(processTree(upstreams.process.child.pid!)) - upBefore;
    console.log(`${c.name}: ${Math.round(r.rps)} req/s, proxy ${(cpu / r.requests * 1e6).toFixed(1)} µs CPU/request (user ${(user / r.requests * 1e6).toFixed(1)}, system ${(system / r.requests * 1e6).toFixed(1)}; ${(cpu / seconds * 100).toFixed(0)}% of a core), upstream ${(up / r.requests * 1e6).toFixed(1)} µs/request`);
  }
} finally {
  for (const c of contenders) await c.process.stop();
  await upstreams.process.stop();
  etcd.close();
  await etcdServer.close();
  rmSync(dir, { recursive: true, force: true });
}
