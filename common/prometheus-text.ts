// Writes the Prometheus text exposition format (version 0.0.4) by hand, for
// the router's and the registry's /metrics: the format is small, and this way
// a hot path pays nothing for it. Every family gets HELP and TYPE, label
// values and help texts are escaped, histograms are written cumulative with
// `+Inf`, `_sum` and `_count`, so the output passes `promtool check metrics`.

export type MetricType = 'counter' | 'gauge' | 'histogram';

/** The content type a scrape answers with. */
export const EXPOSITION_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export class Exposition {
  #lines: string[] = [];

  family(name: string, type: MetricType, help: string): void {
    this.#lines.push(`# HELP ${name} ${help.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')}`, `# TYPE ${name} ${type}`);
  }

  sample(name: string, labels: Record<string, string>, value: number): void {
    const pairs = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
    this.#lines.push(`${name}${pairs.length > 0 ? `{${pairs.join(',')}}` : ''} ${formatValue(value)}`);
  }

  /**
   * One histogram series: `counts[i]` observations fell in bucket i alone
   * (at most `bounds[i]`, above the bound before); observations above the last
   * bound are counted only in `count`.
   */
  histogram(name: string, labels: Record<string, string>, bounds: readonly number[], counts: ArrayLike<number>, sum: number, count: number): void {
    let cumulative = 0;
    for (let i = 0; i < bounds.length; i++) {
      cumulative += counts[i];
      this.sample(`${name}_bucket`, { ...labels, le: String(bounds[i]) }, cumulative);
    }
    this.sample(`${name}_bucket`, { ...labels, le: '+Inf' }, count);
    this.sample(`${name}_sum`, labels, sum);
    this.sample(`${name}_count`, labels, count);
  }

  text(): string {
    return `${this.#lines.join('\n')}\n`;
  }
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function formatValue(value: number): string {
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  if (Number.isNaN(value)) return 'NaN';
  return String(value);
}
