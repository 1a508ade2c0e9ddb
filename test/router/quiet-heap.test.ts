// A worker's heap after a burst (router/process/quiet-heap.ts): the young
// generation V8 grew for the burst is given back once the process goes quiet,
// and never while it is busy. Runs in a child Node started as workers are (no --expose-gc).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { TUG } from '../helpers/tug-process.ts';

const REDUCER = new URL('../../router/process/quiet-heap.ts', import.meta.url).href;

// A burst of allocation whose objects survive a scavenge or two (as requests in flight do), which is
// what makes V8 grow the young generation; then quiet, with the reducer checking every 100 ms.
const CHILD = `
import { getHeapSpaceStatistics } from 'node:v8';
import { QuietHeapReducer } from '${REDUCER}';
const newSpace = () => getHeapSpaceStatistics().find((s) => s.space_name === 'new_space').physical_space_size;
const reducer = QuietHeapReducer.forThisProcess(100);
const before = newSpace();
let keep = [];
const from = performance.now();
while (performance.now() - from < 1500) {
  keep.push({ n: keep.length, s: 'x' + keep.length, a: [1, 2, 3] });
  if (keep.length > 100000) keep = [];
}
const grown = newSpace();
const busyCheck = reducer.check();
keep = null;
reducer.start();
const deadline = performance.now() + 10000;
while (reducer.reductions === 0 && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50));
reducer.stop();
console.log(JSON.stringify({ before, grown, busyCheck, reductions: reducer.reductions, after: newSpace() }));
`;

describe('a worker heap after a burst', () => {
  it('gives back the grown young generation once quiet, and not while busy', async () => {
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', CHILD], { timeout: 30_000 });
    const r = JSON.parse(stdout) as { before: number; grown: number; busyCheck: boolean; reductions: number; after: number };
    assert.ok(r.grown >= r.before + 4 * 2 ** 20, `the burst grew the young generation (${r.before} → ${r.grown} bytes)`);
    assert.equal(r.busyCheck, false, 'no reduction while the process is busy');
    assert.equal(r.reductions, 1, 'one reduction once quiet');
    assert.ok(r.after <= r.grown / 4, `young generation after the reduction: ${r.after} bytes (was ${r.grown})`);
  });
});

describe('--quiet-gc', () => {
  it('takes on or off, and refuses anything else at start-up with exit code 2', () => {
    const result = spawnSync(process.execPath, [TUG, 'router', '--etcd', 'http://127.0.0.1:1', '--quiet-gc', 'sometimes'], { encoding: 'utf8', timeout: 10_000 });
    assert.equal(result.status, 2, result.stderr);
    assert.match(result.stderr, /--quiet-gc: "sometimes" is not on or off/);
  });
});
