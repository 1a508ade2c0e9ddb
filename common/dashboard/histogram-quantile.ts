// A quantile estimated from latency histogram buckets, as Prometheus's
// histogram_quantile() does: find the bucket holding the rank and interpolate
// linearly inside it. Good to a bucket's width, which is what a dashboard needs.

/**
 * The q-quantile (0…1) of observations counted per bucket (`buckets[i]`: those in
 * (bounds[i-1], bounds[i]], not cumulative; `count` includes those above the last
 * bound). Null without observations; the last bound when the rank is above it.
 */
export function histogramQuantile(q: number, bounds: readonly number[], buckets: readonly number[], count: number): number | null {
  if (count <= 0) return null;
  const rank = q * count;
  let below = 0;
  for (let i = 0; i < bounds.length; i++) {
    const inBucket = buckets[i] ?? 0;
    if (inBucket > 0 && below + inBucket >= rank) {
      const lower = i === 0 ? 0 : bounds[i - 1];
      return lower + (bounds[i] - lower) * Math.max(0, rank - below) / inBucket;
    }
    below += inBucket;
  }
  return bounds[bounds.length - 1];
}
