// What the fuzzers share: a seeded PRNG (mulberry32, so a seed replays the same
// inputs on any machine), the bounds and replay controls read from the
// environment, the corpus of inputs found failing once, and a minimiser that
// shrinks a failing input before it is printed.
//
//   TUG_FUZZ_SECONDS  how long random generation runs (default 30; 0 = corpus only)
//   TUG_FUZZ_SEED     the PRNG seed; unset (CI): two thirds of the time from a fixed seed (reproducible),
//                     the last third from a random one, printed ("random" = all from a random seed)
//   TUG_FUZZ_REPLAY   a JSON string (as printed on failure): run only that input
import { readFileSync } from 'node:fs';

export const DEFAULT_SEED = 20261128;

/** A stretch of generated input: its seed and how long it runs. */
export interface FuzzRun {
  readonly seed: number;
  readonly seconds: number;
}

export interface FuzzSettings {
  readonly seconds: number;
  readonly seed: number;
  /** The generator's runs, in order (the fixed seed's, then a random one's, by default). */
  readonly runs: readonly FuzzRun[];
  /** The one input to run instead of the corpus and the generator, or null. */
  readonly replay: string | null;
}

export function fuzzSettings(): FuzzSettings {
  const seconds = Number(process.env.TUG_FUZZ_SECONDS ?? '30');
  if (!Number.isFinite(seconds) || seconds < 0) throw new Error(`TUG_FUZZ_SECONDS: not a number of seconds: ${process.env.TUG_FUZZ_SECONDS}`);
  const rawSeed = process.env.TUG_FUZZ_SEED;
  const randomSeed = () => {
    const picked = (Math.random() * 2 ** 32) >>> 0;
    console.log(`fuzz: TUG_FUZZ_SEED=${picked} (random)`);
    return picked;
  };
  let seed = DEFAULT_SEED;
  let runs: FuzzRun[];
  if (rawSeed === undefined || rawSeed === '') {
    runs = [{ seed, seconds: seconds * 2 / 3 }, { seed: randomSeed(), seconds: seconds / 3 }];
  } else if (rawSeed === 'random') {
    seed = randomSeed();
    runs = [{ seed, seconds }];
  } else {
    seed = Number(rawSeed);
    if (!Number.isInteger(seed)) throw new Error(`TUG_FUZZ_SEED: not an integer or "random": ${rawSeed}`);
    runs = [{ seed: seed >>> 0, seconds }];
  }
  const replayJson = process.env.TUG_FUZZ_REPLAY;
  let replay: string | null = null;
  if (replayJson !== undefined && replayJson !== '') {
    const parsed = JSON.parse(replayJson) as unknown;
    if (typeof parsed !== 'string') throw new Error('TUG_FUZZ_REPLAY: must be a JSON string, as printed by a failing run');
    replay = parsed;
  }
  return { seconds, seed: seed >>> 0, runs, replay };
}

/** A seeded PRNG with the few draws the generators need. */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** mulberry32: uniform in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)];
  }
}

/** One input kept because it once failed: replayed before random generation, every run. */
export interface CorpusEntry {
  /** What it found (the symptom, and the issue or commit that fixed it). */
  readonly found: string;
  /** The input, as a string of latin1 bytes. */
  readonly input: string;
}

export function readCorpus(file: URL): CorpusEntry[] {
  const entries = JSON.parse(readFileSync(file, 'utf8')) as CorpusEntry[];
  for (const e of entries) if (typeof e.input !== 'string' || typeof e.found !== 'string') throw new Error(`${file.pathname}: every entry needs "found" and "input" strings`);
  return entries;
}

/**
 * Shrinks `input` while `stillFails` holds, by cutting pieces (halves down to single bytes, ddmin
 * style), within `budgetMs`. The result is what gets printed for replay.
 */
export async function minimise(input: string, stillFails: (candidate: string) => Promise<boolean>, budgetMs = 15_000): Promise<string> {
  const deadline = Date.now() + budgetMs;
  let best = input;
  for (let size = Math.max(1, best.length >> 1); size >= 1 && Date.now() < deadline; size = size === 1 ? 0 : Math.max(1, size >> 1)) {
    let i = 0;
    while (i < best.length && Date.now() < deadline) {
      const candidate = best.slice(0, i) + best.slice(i + size);
      if (candidate.length > 0 && (await stillFails(candidate))) best = candidate;
      else i += size;
    }
  }
  return best;
}

/** How a failing input is reported, ready to paste back in. */
export function replayLine(label: string, seed: number, input: string, problems: readonly string[]): string {
  return `${label} (TUG_FUZZ_SEED=${seed}):\n  ${problems.join('\n  ')}\n  replay: TUG_FUZZ_REPLAY='${JSON.stringify(input).replaceAll("'", "'\\''")}'`;
}
