// `tug deploy rollout` end to end: the fleet double plays the agent (app
// instances are local HTTP servers, announcers are real `tug announce`
// processes started from the rendered units), with a real etcd and the real
// router, under continuous load through the router.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { Agent, request } from 'undici';
import { EtcdServer } from '../helpers/etcd.ts';
import { FleetDouble } from '../helpers/fleet-double.ts';
import { LocalAgent, type ImageBehaviour } from '../helpers/local-agent.ts';
import { startRouter, type RouterProcess } from '../helpers/router.ts';
import { waitFor } from '../helpers/wait.ts';
import { ExitCodes } from '../../deployer/exit-codes.ts';
import { TUG } from '../helpers/tug-process.ts';


/** Runs `tug deploy rollout` as a script would; resolves with its exit code and output. */
function rollout(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [TUG, 'deploy', 'rollout', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => { stdout += d; });
    child.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

/** GETs through the router from `concurrency` loops until stopped (or 60 s), counting every non-200 and error. */
function loadThrough(router: RouterProcess, concurrency = 4) {
  const agent = new Agent({ keepAliveTimeout: 10_000, connections: concurrency });
  const stats = { ok: 0, failed: 0, failures: [] as string[], versions: new Map<string, number>() };
  let running = true;
  const deadline = Date.now() + 60_000;
  const loop = async () => {
    while (running && Date.now() < deadline) {
      try {
        const res = await request(`http://127.0.0.1:${router.httpPort}/`, { headers: { host: 'web.test' }, dispatcher: agent });
        const body = (await res.body.text()).trim();
        if (res.statusCode === 200) {
          stats.ok++;
          stats.versions.set(body, (stats.versions.get(body) ?? 0) + 1);
        } else {
          stats.failed++;
          stats.failures.push(`${res.statusCode} ${body}`);
        }
      } catch (err) {
        stats.failed++;
        stats.failures.push((err as Error).message);
      }
    }
  };
  const loops = Array.from({ length: concurrency }, loop);
  return {
    stats,
    async stop() {
      running = false;
      await Promise.all(loops);
      await agent.close();
      return stats;
    },
  };
}

describe('tug deploy rollout', () => {
  let etcd: EtcdServer;
  let router: RouterProcess;
  let fleet: FleetDouble;
  let agent: LocalAgent;
  // web:3 serves for its first instance only: the second start fails like a missing image.
  const flakyStarts = { n: 0 };
  const images = (image: string): ImageBehaviour => {
    const tag = image.split(':').at(-1)!;
    if (tag === 'unhealthy') return { kind: 'unhealthy' };
    if (tag === '3') return ++flakyStarts.n === 1 ? { kind: 'serve', version: 'v3' } : { kind: 'missing' };
    return { kind: 'serve', version: `v${tag}` };
  };
  const args = (image: string, extra: string[] = []) => [
    'web', '--endpoint', fleet.endpoint, '--etcd', etcd.endpoint,
    '--image', `localhost:5000/web:${image}`, '--port', '3000', '--health', '/healthz', '--instances', '3',
    '--timeout', '8s', '--settle', '300ms', '--drain', '400ms', '--withdraw-timeout', '5s', '--poll-interval', '100ms',
    ...extra,
  ];
  const instances = () => [...fleet.cluster.units.values()]
    .filter((u) => /^web@\d+\.service$/.test(u.name))
    .map((u) => `${u.name}=${u.options.find((o) => o.name === 'ExecStart')!.value.split(' ').at(-1)!.split(':').at(-1)}`)
    .sort();

  before(async () => {
    etcd = await EtcdServer.start();
    router = await startRouter({ etcd: etcd.endpoint, workers: 1 });
    agent = new LocalAgent(images, ['--health-interval', '200ms', '--health-timeout', '150ms', '--ttl', '3']);
    fleet = await FleetDouble.start({ agent });
    for (let i = 0; i < 4; i++) fleet.cluster.addMachine();
  });
  after(async () => {
    await fleet?.cluster.settled();
    await agent?.close();
    await fleet?.close();
    await router?.stop();
    await etcd?.close();
  });

  it('deploys three instances from nothing, one at a time', async () => {
    const result = await rollout(args('1'));
    assert.equal(result.code, ExitCodes.OK, result.stdout + result.stderr);
    assert.deepEqual(instances(), ['web@1.service=1', 'web@2.service=1', 'web@3.service=1']);
    await waitFor(async () => (await request(`http://127.0.0.1:${router.httpPort}/`, { headers: { host: 'web.test' } }).then((r) => r.body.text())).trim() === 'v1', { what: 'v1 routed' });
    assert.match(result.stdout, /rollout web: \[1\/3\] launching web@1\.service\n/);
    assert.match(result.stdout, /rollout web: done: web@1\.service, web@2\.service, web@3\.service serve localhost:5000\/web:1\n$/);
    assert.deepEqual([...fleet.cluster.units.keys()].filter((n) => n.includes('@.')).sort(), ['web-announce@.service', 'web@.service'], 'templates submitted for fleetctl users');
  });

  it('replaces three instances under continuous load through the router with zero failed requests', async () => {
    const load = loadThrough(router);
    await waitFor(() => load.stats.ok > 50, { timeout: 5000, what: 'load running' });
    const result = await rollout(args('2'));
    await waitFor(() => (load.stats.versions.get('v2') ?? 0) > 50, { timeout: 5000, what: 'v2 serving under load' });
    const stats = await load.stop();
    assert.equal(result.code, ExitCodes.OK, result.stdout + result.stderr);
    assert.equal(stats.failed, 0, `failed requests: ${stats.failures.slice(0, 5).join('; ')}`);
    assert.ok(stats.ok > 200, `only ${stats.ok} requests made it through`);
    assert.deepEqual(instances(), ['web@4.service=2', 'web@5.service=2', 'web@6.service=2']);
    // Never more than one instance down: each old one is retired only after its replacement serves.
    const lines = result.stdout.split('\n');
    for (const [n, old] of [[4, 1], [5, 2], [6, 3]]) {
      const serves = lines.findIndex((l) => l.includes(`web@${n}.service serves at 127.0.0.1:`));
      const retires = lines.findIndex((l) => l.includes(`retiring web@${old}.service`));
      assert.ok(serves !== -1 && serves < retires, `web@${old} retired after web@${n} served\n${result.stdout}`);
    }
  });

  it('rolls back when the new image never becomes healthy: exit 3, the old instances still serve', async () => {
    const load = loadThrough(router, 2);
    const result = await rollout(args('unhealthy', ['--timeout', '3s']));
    const stats = await load.stop();
    assert.equal(result.code, ExitCodes.ROLLED_BACK, result.stdout + result.stderr);
    assert.match(result.stderr, /^tug deploy: rollout failed and was rolled back: web@7\.service did not serve within 3000 ms \(last: web@7\.service (announced|runs on)/);
    assert.match(result.stdout, /\[rollback\] web@7\.service removed \(it never served\)/);
    assert.deepEqual(instances(), ['web@4.service=2', 'web@5.service=2', 'web@6.service=2']);
    assert.equal(stats.failed, 0, stats.failures.slice(0, 5).join('; '));
    assert.deepEqual([...stats.versions.keys()], ['v2']);
  });

  it('restores a retired old instance before removing the new ones when a later instance fails (fleet reports it failed)', async () => {
    const load = loadThrough(router, 2);
    const result = await rollout(args('3'));
    const stats = await load.stop();
    assert.equal(result.code, ExitCodes.ROLLED_BACK, result.stdout + result.stderr);
    // web@7 (the freed name is used again) serves web:3, web@8 fails to start; web@4 was retired for web@7.
    assert.match(result.stderr, /web@8\.service failed on machine/, result.stdout);
    assert.deepEqual(instances(), ['web@5.service=2', 'web@6.service=2', 'web@9.service=2'], 'the retired web@4 came back as web@9, from its own saved unit');
    const lines = result.stdout.split('\n');
    const restored = lines.findIndex((l) => l.includes('[rollback] web@9.service serves at'));
    const removed = lines.findIndex((l) => l.includes('[rollback] retiring web@7.service'));
    assert.ok(restored !== -1 && restored < removed, result.stdout);
    assert.equal(stats.failed, 0, stats.failures.slice(0, 5).join('; '));
  });

  it('refuses to start when no machine is free for the surge instance (exit 1, nothing changed)', async () => {
    const result = await rollout(args('4', ['--instances', '4']));
    assert.equal(result.code, ExitCodes.OK, 'with 4 machines and 3 instances, one is free');
    const before = instances();
    assert.deepEqual(before.map((i) => i.split('=')[1]), ['4', '4', '4', '4']);
    const unitsBefore = fleet.requests.filter((r) => !r.startsWith('GET')).length;
    const full = await rollout(args('5', ['--instances', '4']));
    assert.equal(full.code, ExitCodes.FAILED, full.stdout + full.stderr);
    assert.match(full.stderr, /^tug deploy: rollout refused: no free machine: Conflicts=web@\*\.service/);
    assert.deepEqual(instances(), before);
    assert.equal(fleet.requests.filter((r) => !r.startsWith('GET')).length, unitsBefore, 'no change was sent to fleet');
  });
});
