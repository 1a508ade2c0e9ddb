// Bad input at scale: the single-router battery of malformed and
// smuggling-shaped requests (test/helpers/bad-requests.ts), oversized heads,
// slowloris clients and abrupt disconnects, thrown in rounds through the load
// balancer at all three routers while normal load runs. No router process
// crashes, no connection desyncs (a valid request pipelined after a refused one
// is never answered as if it were a new request on a sane stream: the
// connection closes after the refusal), the normal load loses nothing, and the
// routers' open file descriptors and memory come back (measured in /proc).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { badRequestGroups, HOST, statuses, type BadCase } from '../helpers/bad-requests.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { ClusterReport } from '../helpers/cluster/cluster-report.ts';
import { LoadGenerator } from '../helpers/cluster/load-generator.ts';
import { TugCluster } from '../helpers/cluster/tug-cluster.ts';

const report = new ClusterReport('bad-input', 'Bad input at scale');
const started = Date.now();
const ROUNDS = 4;
/** Every bad case goes this many times per round. */
const REPEAT = 3;
const PARALLEL = 16;
const SLOW_CLIENTS = 60;
const RESETS = 60;
/** After the battery, a router process may hold at most this many more fds than before (see the report). */
const FD_SLACK = 10;
/** RSS growth allowed per router process across the measured rounds (see the report). */
const RSS_SLACK_MIB = 32;
const VALID = `GET /after-bad-input HTTP/1.1\r\n${HOST}\r\n`;

interface ProcessFigures {
  readonly pid: number;
  readonly role: string;
  readonly fds: number;
  readonly rssMiB: number;
}

/** The router's primary and its workers (children), with open fds and RSS. */
function measure(primary: number, node: string): ProcessFigures[] {
  const pids = [primary, ...childrenOf(primary)];
  return pids.map((pid, i) => ({
    pid,
    role: `${node} ${i === 0 ? 'primary' : 'worker'}`,
    fds: readdirSync(`/proc/${pid}/fd`).length,
    rssMiB: Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024,
  }));
}

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' }).trim().split('\n').filter(Boolean).map(Number);
  }
}

/** Sends `bytes` on a fresh connection to host:port; everything answered until the server closed (or `timeout`). */
function exchange(host: string, port: number, bytes: string, timeout = 5000): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect(port, host);
    const chunks: Buffer[] = [];
    let closed = false;
    const timer = setTimeout(() => socket.destroy(), timeout);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => { closed = true; });
    socket.on('error', () => { closed = true; });
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), closed });
    });
    socket.write(bytes);
  });
}

/** A slowloris client: a head dripped one header line every `interval` ms until the server closes. */
function slowloris(host: string, port: number, interval: number, timeout: number): Promise<{ text: string; ms: number }> {
  return new Promise((resolve) => {
    const begun = Date.now();
    const socket = connect(port, host);
    const chunks: Buffer[] = [];
    const ticker = setInterval(() => { if (socket.writable) socket.write('X-Slow: 1\r\n'); }, interval);
    const timer = setTimeout(() => socket.destroy(), timeout);
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => {});
    socket.on('close', () => {
      clearInterval(ticker);
      clearTimeout(timer);
      resolve({ text: Buffer.concat(chunks).toString('latin1'), ms: Date.now() - begun });
    });
    socket.write(`GET /slow HTTP/1.1\r\n${HOST}`);
  });
}

/** Sends part of a request and resets the connection (RST) without waiting for anything. */
async function sendAndReset(host: string, port: number, bytes: string): Promise<void> {
  const socket = connect(port, host);
  socket.on('error', () => {});
  await new Promise<void>((resolve) => socket.write(bytes, () => resolve()));
  await sleep(5);
  const closed = new Promise((resolve) => socket.once('close', resolve));
  socket.resetAndDestroy();
  await closed;
}

async function inParallel<T>(items: readonly T[], limit: number, run: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: limit }, async () => {
    while (next < items.length) await run(items[next++]);
  }));
}

const PARTIAL_REQUESTS = [
  'GET /half-head HTTP/1.1\r\nHost: app.te',
  `POST /half-head HTTP/1.1\r\n${HOST}Content-Le`,
  `POST /half-body HTTP/1.1\r\n${HOST}Content-Length: 100\r\n\r\nhello`,
  `POST /half-chunked HTTP/1.1\r\n${HOST}Transfer-Encoding: chunked\r\n\r\n5\r\nhel`,
];

describe('bad input at scale', () => {
  let cluster: TugCluster;
  const cases: BadCase[] = badRequestGroups.flatMap(([, list]) => list);

  before(async () => {
    cluster = await TugCluster.start({ routerArgs: ['--client-header-timeout', '1s'] });
  });

  after(async () => {
    const network = cluster?.network.namespaces === false ? `loopback fallback (${cluster.network.fallbackReason})` : 'network namespaces';
    await cluster?.close();
    report.write({ network, wallMs: Date.now() - started });
  });

  /** One round: every bad case with a valid request pipelined after it, slowloris clients and resets, all through the LB. */
  async function round(): Promise<{ exchanges: number; desyncs: string[] }> {
    const lb = cluster.lb;
    const desyncs: string[] = [];
    let exchanges = 0;
    await inParallel(Array.from({ length: REPEAT }, () => cases).flat(), PARALLEL, async (c) => {
      const reply = await exchange(lb.host, lb.port, c.bytes + VALID);
      exchanges++;
      const got = statuses(reply.text);
      // Refused and closed; or (only where the refusal kept the connection sane) the valid request answered 200 after it.
      const sane = got[0] === c.status && reply.closed && (got.length === 1 || (got.length === 2 && got[1] === 200));
      if (!sane) desyncs.push(`${c.name}: ${JSON.stringify(got)} closed=${reply.closed}`);
    });
    const slow = Array.from({ length: SLOW_CLIENTS }, () => slowloris(lb.host, lb.port, 200, 10_000));
    await inParallel(Array.from({ length: RESETS }, (_, i) => PARTIAL_REQUESTS[i % PARTIAL_REQUESTS.length]), PARALLEL, (bytes) => sendAndReset(lb.host, lb.port, bytes));
    exchanges += RESETS;
    for (const reply of await Promise.all(slow)) {
      exchanges++;
      const got = statuses(reply.text);
      if (got.length !== 1 || got[0] !== 408 || reply.ms > 5000) desyncs.push(`slowloris: ${JSON.stringify(got)} after ${reply.ms} ms`);
    }
    return { exchanges, desyncs };
  }

  it('survives rounds of malformed, smuggling, oversized, slowloris and reset clients under load with no crash, desync, fd growth or unbounded memory', async () => {
    const pids = cluster.nodes.map((n) => ({ node: n.host.name, pid: n.router.child.pid! }));
    const load = new LoadGenerator(cluster.lb.url, { host: 'app.test', connections: 4, rate: 100, timeout: 5000, maxDuration: 120_000 });
    let exchanges = 0;
    const desyncs: string[] = [];
    let before: ProcessFigures[] = [];
    let afterFigures: ProcessFigures[] = [];
    try {
      // One unmeasured round first: the first time code runs it allocates what it keeps (JIT, pools).
      const warm = await round();
      exchanges += warm.exchanges;
      desyncs.push(...warm.desyncs);
      await sleep(1000);
      before = pids.flatMap((p) => measure(p.pid, p.node));
      for (let i = 0; i < ROUNDS; i++) {
        const r = await round();
        exchanges += r.exchanges;
        desyncs.push(...r.desyncs);
      }
      // Closed connections are released asynchronously: wait (bounded) for the fds to come back.
      await waitFor(() => {
        afterFigures = pids.flatMap((p) => measure(p.pid, p.node));
        return afterFigures.every((f, i) => f.fds <= before[i].fds + FD_SLACK);
      }, { timeout: 10_000, interval: 200, what: 'router fds back to their level before the battery' }).catch(() => {});
    } finally {
      await load.stop();
    }
    const summary = load.records.length;
    const failed = load.records.filter((r) => !r.ok).length;
    const rows = before.map((b, i) => {
      const a = afterFigures[i];
      return `| ${b.role} (pid ${b.pid}) | ${b.fds} | ${a?.fds ?? '?'} | ${b.rssMiB.toFixed(1)} | ${a?.rssMiB.toFixed(1) ?? '?'} |`;
    });
    report.line(`${ROUNDS} measured rounds after one warm-up round, each through the LB at all three routers: the ${cases.length} bad requests of test/helpers/bad-requests.ts ${REPEAT} times, each with a valid GET pipelined after it (${PARALLEL} at a time), ${SLOW_CLIENTS} slowloris clients (a header line every 200 ms; \`--client-header-timeout 1s\`) and ${RESETS} clients resetting mid-head or mid-body. ${exchanges} bad connections in all; meanwhile ${summary} normal requests through the LB, ${failed} failed. Desyncs: ${desyncs.length}${desyncs.length ? ` (${desyncs.slice(0, 5).join('; ')})` : ''}.`);
    report.line('');
    report.line(`Router processes, measured after the warm-up round and again after the last round (fds settle within 10 s; allowed: +${FD_SLACK} fds, +${RSS_SLACK_MIB} MiB RSS):`);
    report.line('');
    report.line('| process | fds before | fds after | RSS before (MiB) | RSS after (MiB) |');
    report.line('|---|---:|---:|---:|---:|');
    for (const row of rows) report.line(row);
    report.line('');
    report.line(`Why these bounds: the fds a router holds move with the load's keep-alive connections (4 client, and upstream pools that idle out after 4 s), so ±${FD_SLACK} is noise; a leak of one fd in a hundred bad connections would already exceed it. RSS moves by tens of MiB with V8's heap sizing and allocator arenas without any leak; a leaked connection keeps its socket and buffers (tens of KiB; 16 KiB heads in the oversized cases), and the ${ROUNDS} measured rounds open ${Math.round(exchanges * ROUNDS / (ROUNDS + 1))} connections, so leaking even a third of them would pass ${RSS_SLACK_MIB} MiB — and a leaked socket is a leaked fd, which the fd bound catches far earlier.`);

    for (const p of pids) assert.equal(cluster.node(p.node).router.child.exitCode, null, `router on ${p.node} alive`);
    for (const node of cluster.nodes) {
      assert.equal(node.router.logs().filter((l) => l.msg === 'router worker died; restarting it').length, 0, `no worker died on ${node.host.name}`);
    }
    await cluster.lb.waitAllHealthy(5000);
    assert.deepEqual(desyncs, [], 'every bad request refused with its status on a connection then closed');
    assert.equal(failed, 0, `normal load: ${failed} of ${summary} failed`);
    for (const [i, b] of before.entries()) {
      const a = afterFigures[i];
      assert.ok(a.fds <= b.fds + FD_SLACK, `${b.role}: ${b.fds} fds before, ${a.fds} after`);
      assert.ok(a.rssMiB <= b.rssMiB + RSS_SLACK_MIB, `${b.role}: RSS ${b.rssMiB.toFixed(1)} MiB before, ${a.rssMiB.toFixed(1)} after`);
    }
  });
});
