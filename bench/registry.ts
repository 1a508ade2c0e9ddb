// The registry scenario: push and pull of a ~100 MiB image with skopeo through
// `tug registry` on Azurite (the Azure Blob emulator) and through Debian's
// `docker-registry` (distribution 2.8) on the local filesystem. Times: push,
// pull with the registry's node cache empty (cold: every blob read from
// storage), pull again (warm: tug serves from its --cache-dir). Each round
// pushes a new image (fresh random layers), so no push finds its blobs already
// there, and restarts tug's registry on an empty cache first; the registries
// run in alternating order. Medians of the rounds.
//
// distribution has no cache of its own: its "cold" pull reads files the kernel
// most likely still holds in its page cache (the push just wrote them); the
// bench never drops the page cache (other work shares the machine).
//
// The floor: the same blob files uploaded to the same Azurite with a plain
// @azure/storage-blob `uploadFile` and downloaded back into files with
// `downloadToFile`: what moving these bytes through Azurite costs with no
// registry in between, in the order skopeo moves them — it pushes layers one
// after another (POST, PATCH, PUT per layer, never two at once) and pulls them
// all at once. So the floor uploads one file after another and downloads all
// at once; the registry cannot overlap layers the client sends in turn. A
// second row uploads all files at once, for reference (what a client pushing
// layers in parallel could reach).
//
// A third row pulls the image tug's registry was pushed with through a second
// `tug registry` on the same container with `--blob-redirect`: skopeo follows
// each blob GET's 307 to Azurite and reads the bytes from it, the registry
// relaying none (it pushes nothing of its own: the same blobs would already be
// there). Its cache holds no blob, since a redirected pull does not fill it:
// its "warm" pull redirects again.
//
// Each time comes with the CPU seconds its processes spent meanwhile (from
// /proc): the registry's, Azurite's and the client's (skopeo, or the floor's
// own SDK client), so a report shows where a gap comes from on a machine
// whose cores those processes share.
//
// `node bench/registry.ts [rounds]` runs this scenario alone (default 3 rounds).
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AzuriteServer } from '../test/helpers/azurite.ts';
import { DistributionRegistry } from '../test/helpers/distribution.ts';
import { layoutTag, OciLayoutWriter } from '../test/helpers/oci-layout.ts';
import { startRegistry, type RegistryProcess } from '../test/helpers/registry.ts';
import { skopeoCopy } from '../test/helpers/skopeo.ts';
import { cpuSeconds, endedChildrenCpuSeconds } from './processes.ts';
import { median } from './stats.ts';

/** CPU seconds one operation cost each process. */
export interface CpuSplit {
  /** The registry under test (0 for the floor, which has none). */
  readonly registry: number;
  readonly azurite: number;
  /** skopeo, or the floor's own @azure/storage-blob client. */
  readonly client: number;
}

type Operation = 'push' | 'pullCold' | 'pullWarm';

export interface RegistryTimes {
  /** Seconds, one per round. */
  readonly push: readonly number[];
  readonly pullCold: readonly number[];
  readonly pullWarm: readonly number[];
  /** CPU seconds, one per round. */
  readonly cpu: Record<Operation, readonly CpuSplit[]>;
}

export interface RegistryResult {
  readonly image: { readonly layers: number; readonly MiB: number };
  readonly rounds: number;
  readonly registries: Record<string, RegistryTimes & { readonly median: { push: number; pullCold: number; pullWarm: number } }>;
}

/** The row of the plain SDK upload and download (not a registry), in skopeo's order: the ratios are against it. */
export const FLOOR = 'floor: @azure/storage-blob on Azurite, push one layer after another';
/** The plain SDK upload of all layers at once (push only). */
export const FLOOR_PARALLEL = 'floor, push all layers at once';

const TAG = 'v1';
const LAYERS = 4;
const LAYER_BYTES = 25 * 1024 * 1024;

interface Target {
  readonly name: string;
  /** Pulls what this other target pushed (same storage) instead of pushing its own. */
  readonly pullsPushOf?: string;
  host(): string;
  /** The registry's process id, for its CPU time. */
  pid(): number | undefined;
  /** Before a cold pull: empty whatever cache the registry keeps. */
  emptyCache(): Promise<void>;
  close(): Promise<void>;
}

export async function measureRegistry(rounds: number, progress: (line: string) => void): Promise<RegistryResult> {
  const work = await mkdtemp(join(tmpdir(), 'tug-bench-registry-'));
  const closers: (() => Promise<void>)[] = [];
  try {
    const azurite = await AzuriteServer.start();
    closers.push(() => azurite.close());
    const targets: Target[] = [await tugTarget(azurite, work, false), await tugTarget(azurite, work, true), await distributionTarget(work)];
    for (const t of targets) closers.push(() => t.close());

    const times = new Map<string, { push: number[]; pullCold: number[]; pullWarm: number[]; cpu: Record<Operation, CpuSplit[]> }>([FLOOR, FLOOR_PARALLEL, ...targets.map((t) => t.name)]
      .map((name) => [name, { push: [], pullCold: [], pullWarm: [], cpu: { push: [], pullCold: [], pullWarm: [] } }]));
    // Runs `action` and records its seconds and the CPU each process spent meanwhile.
    const record = async (name: string, operation: Operation, registryPid: number | undefined, action: () => Promise<unknown>) => {
      const ownClient = registryPid === undefined;
      const cpu = () => ({
        registry: registryPid === undefined ? 0 : cpuSeconds([registryPid]),
        azurite: azurite.pid === undefined ? 0 : cpuSeconds([azurite.pid]),
        client: ownClient ? processCpuSeconds() : endedChildrenCpuSeconds(),
      });
      const before = cpu();
      const seconds = await timed(action);
      const after = cpu();
      const t = times.get(name)!;
      t[operation].push(seconds);
      t.cpu[operation].push({ registry: after.registry - before.registry, azurite: after.azurite - before.azurite, client: after.client - before.client });
    };
    const floorContainer = azurite.container('floor');
    await floorContainer.createIfNotExists();
    for (let round = 0; round < rounds; round++) {
      const layout = join(work, `image-${round}`);
      // Incompressible layers (gzip level 1: random bytes do not shrink, no point spending CPU on it).
      const writer = new OciLayoutWriter(layout);
      const top = await writer.writeImage(Array.from({ length: LAYERS }, (_, i) => ({ [`layer-${i}.bin`]: randomBytes(LAYER_BYTES) })), undefined, 1);
      await writer.finish(top, TAG);
      const floor = times.get(FLOOR)!;
      const blobs = join(layout, 'blobs', 'sha256');
      const files = await readdir(blobs);
      const downloads = join(work, `floor-${round}`);
      await mkdir(downloads, { recursive: true });
      const parallel = times.get(FLOOR_PARALLEL)!;
      const upload = (f: string, prefix: string) => floorContainer.getBlockBlobClient(`${prefix}/${f}`).uploadFile(join(blobs, f));
      await record(FLOOR, 'push', undefined, async () => { for (const f of files) await upload(f, `${round}`); });
      await record(FLOOR_PARALLEL, 'push', undefined, () => Promise.all(files.map((f) => upload(f, `${round}-parallel`))));
      await record(FLOOR, 'pullCold', undefined, () => Promise.all(files.map((f) => floorContainer.getBlockBlobClient(`${round}/${f}`).downloadToFile(join(downloads, f)))));
      await rm(downloads, { recursive: true, force: true });
      progress(`  registry round ${round + 1}/${rounds} floor: upload ${floor.push.at(-1)!.toFixed(2)} s (all at once ${parallel.push.at(-1)!.toFixed(2)} s), download ${floor.pullCold.at(-1)!.toFixed(2)} s`);
      // Alternating order; a target that pulls another's push comes right after it, and first among the two pulls every other round.
      const pushers = targets.filter((t) => !t.pullsPushOf);
      const order = (round % 2 === 0 ? pushers : [...pushers].reverse()).flatMap((p) => {
        const pullers = targets.filter((t) => t.pullsPushOf === p.name);
        return pullers.length === 0 ? [p] : round % 4 < 2 ? [p, ...pullers] : [...pullers, p];
      });
      const pushed = new Set<string>();
      const pushTo = async (target: Target) => {
        if (pushed.has(target.name)) return;
        pushed.add(target.name);
        await record(target.name, 'push', target.pid(), () => skopeoCopy(`oci:${layout}:${TAG}`, `docker://${target.host()}/bench/image-${round}:${TAG}`));
      };
      for (const target of order) {
        const reference = `docker://${target.host()}/bench/image-${round}:${TAG}`;
        const t = times.get(target.name)!;
        await pushTo(target.pullsPushOf ? targets.find((p) => p.name === target.pullsPushOf)! : target);
        await target.emptyCache();
        for (const kind of ['pullCold', 'pullWarm'] as const) {
          const into = join(work, `pull-${target.name}-${round}-${kind}`);
          try {
            await record(target.name, kind, target.pid(), () => skopeoCopy(reference, `oci:${into}:${TAG}`));
            // A pull that brought back something else would time nothing worth comparing.
            const pulled = (await layoutTag(into, TAG)).digest;
            if (pulled !== top.digest) throw new Error(`${target.name}: pulled ${pulled}, pushed ${top.digest}`);
          } finally {
            await rm(into, { recursive: true, force: true });
          }
        }
        progress(`  registry round ${round + 1}/${rounds} ${target.name}: push ${target.pullsPushOf ? '—' : `${t.push.at(-1)!.toFixed(2)} s`}, pull cold ${t.pullCold.at(-1)!.toFixed(2)} s, warm ${t.pullWarm.at(-1)!.toFixed(2)} s`);
      }
      await rm(layout, { recursive: true, force: true });
    }
    const registries: RegistryResult['registries'] = {};
    const medianOrNaN = (values: number[]) => (values.length > 0 ? median(values) : NaN);
    for (const [name, t] of times) registries[name] = { ...t, median: { push: medianOrNaN(t.push), pullCold: medianOrNaN(t.pullCold), pullWarm: medianOrNaN(t.pullWarm) } };
    return { image: { layers: LAYERS, MiB: (LAYERS * LAYER_BYTES) / 2 ** 20 }, rounds, registries };
  } finally {
    for (const close of closers.reverse()) await close().catch(() => {});
    await rm(work, { recursive: true, force: true });
  }
}

/** The row of tug's registry. */
export const TUG = 'tug registry (Azurite)';

/**
 * `tug registry` on Azurite with a node cache; emptying the cache means a restart on a new, empty
 * cache dir. With `redirect`, blob GETs are redirected to Azurite, and it pulls what TUG pushed.
 */
async function tugTarget(azurite: AzuriteServer, work: string, redirect: boolean): Promise<Target> {
  let caches = 0;
  const start = (port?: number) => startRegistry({
    connectionString: azurite.connectionString,
    ...(port === undefined ? {} : { port }),
    args: ['--cache-dir', join(work, `tug-cache-${redirect ? 'redirect-' : ''}${caches++}`), '--no-access-log', '--log-level', 'warn', ...(redirect ? ['--blob-redirect'] : [])],
  });
  let registry: RegistryProcess = await start();
  return {
    name: redirect ? `${TUG}, --blob-redirect` : TUG,
    ...(redirect ? { pullsPushOf: TUG } : {}),
    host: () => registry.host,
    pid: () => registry.child.pid,
    async emptyCache() {
      const port = registry.port;
      await registry.close();
      registry = await start(port);
    },
    close: () => registry.close(),
  };
}

async function distributionTarget(work: string): Promise<Target> {
  const registry = await DistributionRegistry.start(join(work, 'distribution'));
  return {
    name: 'docker-registry (filesystem)',
    host: () => registry.host,
    pid: () => registry.pid,
    async emptyCache() {},
    close: () => registry.close(),
  };
}

/** This process's user+system CPU seconds (the floor's client runs in it). */
function processCpuSeconds(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
}

async function timed(action: () => Promise<unknown>): Promise<number> {
  const start = performance.now();
  await action();
  return (performance.now() - start) / 1000;
}

/** The Markdown table of the report. */
export function registryTable(result: RegistryResult): string {
  const lines = [
    `Push and pull with skopeo of a ${result.image.MiB} MiB image (${result.image.layers} layers of random bytes), medians of ${result.rounds} rounds, seconds:`,
    '',
    '| registry | push | pull, cold cache | pull, warm cache | push, cold pull ÷ floor (median of the rounds\' ratios) |',
    '|---|---:|---:|---:|---:|',
  ];
  const floor = result.registries[FLOOR];
  const seconds = (value: number) => (Number.isNaN(value) ? '—' : value.toFixed(2));
  // Each round's time over the same round's floor: the rounds are interleaved, so a
  // round slowed down by the shared machine slows both (the ratio of medians would mix rounds).
  const ratio = (times: readonly number[], floors: readonly number[]) => (times.length === 0 ? '—' : median(times.map((t, i) => t / floors[i])).toFixed(2));
  for (const [name, r] of Object.entries(result.registries)) {
    const ratios = floor && name !== FLOOR ? `${ratio(r.push, floor.push)}, ${ratio(r.pullCold, floor.pullCold)}` : '';
    lines.push(`| ${name} | ${seconds(r.median.push)} | ${seconds(r.median.pullCold)} | ${seconds(r.median.pullWarm)} | ${ratios} |`);
  }
  lines.push('', 'CPU seconds each process spent during the operation (medians of the rounds): registry / Azurite / client (skopeo, or the floor\'s own SDK client), and their sum:', '',
    '| registry | push | pull, cold cache | pull, warm cache |', '|---|---:|---:|---:|');
  const split = (splits: readonly CpuSplit[] | undefined) => {
    if (!splits || splits.length === 0) return '—';
    const m = (pick: (c: CpuSplit) => number) => median(splits.map(pick));
    return `${m((c) => c.registry).toFixed(2)} / ${m((c) => c.azurite).toFixed(2)} / ${m((c) => c.client).toFixed(2)} = ${m((c) => c.registry + c.azurite + c.client).toFixed(2)}`;
  };
  for (const [name, r] of Object.entries(result.registries)) {
    lines.push(`| ${name} | ${split(r.cpu.push)} | ${split(r.cpu.pullCold)} | ${split(r.cpu.pullWarm)} |`);
  }
  return lines.join('\n');
}

if (import.meta.main) {
  const rounds = Number(process.argv[2] ?? 3);
  const result = await measureRegistry(rounds, (line) => process.stdout.write(`${line}\n`));
  process.stdout.write(`\n${registryTable(result)}\n`);
}
