// What the dashboards compute from a component's counters (common/dashboard/):
// rates over a window of about 10 s between two sums, a counter that starts
// again counted from zero, and latency quantiles interpolated inside histogram
// buckets as Prometheus's histogram_quantile() does.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { CounterRates, requestRate } from '../../common/dashboard/counter-rates.ts';
import { histogramQuantile } from '../../common/dashboard/histogram-quantile.ts';

const totals = (entries: Record<string, number[]>) => new Map(Object.entries(entries));

describe('dashboard rates over cumulative counters', () => {
  it('gives no rate until two sums are at least half a second apart', () => {
    const rates = new CounterRates();
    assert.equal(rates.observe(totals({ a: [1, 0, 0, 0, 0] }), 1_000).seconds, null);
    const soon = rates.observe(totals({ a: [5, 0, 0, 0, 0] }), 1_200);
    assert.equal(soon.increase(['a']), null);
    assert.equal(requestRate(soon, ['a']), null);
    assert.deepEqual(soon.total(['a']), [5, 0, 0, 0, 0]);
  });

  it('divides what the counters added by the time between the sums, and the 5xx by all answers', () => {
    const rates = new CounterRates();
    rates.observe(totals({ a: [0, 10, 0, 0, 2], b: [0, 5, 0, 0, 0] }), 0);
    const window = rates.observe(totals({ a: [0, 30, 0, 5, 7], b: [0, 5, 0, 0, 0] }), 5_000);
    assert.equal(window.seconds, 5);
    assert.deepEqual(window.increase(['a', 'b']), [0, 20, 0, 5, 5]);
    assert.deepEqual(requestRate(window, ['a']), { rps: 30 / 5, errorShare: 5 / 30 });
    assert.deepEqual(requestRate(window, ['b']), { rps: 0, errorShare: null });
    assert.deepEqual(window.perSecond(['a']), [0, 4, 0, 1, 1]);
  });

  it('slides the window: the base is the newest sum at least 10 s old', () => {
    const rates = new CounterRates();
    for (let t = 0; t <= 20_000; t += 2_000) rates.observe(totals({ a: [t / 1000] }), t);
    const window = rates.observe(totals({ a: [22] }), 22_000);
    assert.equal(window.seconds, 10);
    assert.deepEqual(window.increase(['a']), [10]);
  });

  it('counts a counter that went down as started again from zero', () => {
    const rates = new CounterRates();
    rates.observe(totals({ a: [100, 8] }), 0);
    const window = rates.observe(totals({ a: [3, 1] }), 2_000);
    assert.deepEqual(window.increase(['a']), [3, 1]);
  });

  it('keeps its own copy of the sums it was given', () => {
    const rates = new CounterRates();
    const counts = [1];
    rates.observe(new Map([['a', counts]]), 0);
    counts[0] = 50;
    assert.deepEqual(rates.observe(totals({ a: [4] }), 1_000).increase(['a']), [3]);
  });
});

describe('latency quantiles from histogram buckets', () => {
  const bounds = [0.01, 0.1, 1];

  it('interpolates linearly inside the bucket that holds the rank', () => {
    // 10 in (0, 0.01], 10 in (0.01, 0.1]: the median is the first bucket's top, p75 half-way into the second.
    assert.equal(histogramQuantile(0.5, bounds, [10, 10, 0], 20), 0.01);
    assert.ok(Math.abs(histogramQuantile(0.75, bounds, [10, 10, 0], 20)! - 0.055) < 1e-12);
  });

  it('answers the last bound for a rank above it, and null without observations', () => {
    assert.equal(histogramQuantile(0.99, bounds, [1, 0, 0], 10), 1);
    assert.equal(histogramQuantile(0.5, bounds, [0, 0, 0], 0), null);
  });
});
