// The benchmark's outputs: a JSON file with every round, a Markdown table of
// medians and ratios — each contender to nginx, Tug to node-min (what Tug's own
// code costs over Node's floor), Tug on another Node to Tug — and an SVG chart
// of req/s and p99 by scenario.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScenarioResult } from './throughput.ts';

export interface Report {
  readonly machine: Record<string, string | number>;
  readonly settings: Record<string, string | number | boolean>;
  readonly throughput: readonly ScenarioResult[];
  readonly extra: Record<string, unknown>;
  /** Markdown sections of their own (heading, text), after the ratio table. */
  readonly sections: readonly { readonly heading: string; readonly markdown: string }[];
  readonly notes: readonly string[];
}

export function ratioTable(results: readonly ScenarioResult[]): string {
  if (results.length === 0) return '(no throughput scenario ran)';
  const contenders = [...new Set(results.map((r) => r.contender))];
  const scenarios = [...new Set(results.map((r) => r.scenario))];
  // req/s ratios beside the ×nginx ones: tug / node-min, and tug@<major> / tug for another runtime.
  const pairs: [string, string][] = [
    ...(contenders.includes('tug') && contenders.includes('node-min') ? [['tug', 'node-min'] as [string, string]] : []),
    ...contenders.filter((c) => c.startsWith('tug@')).map((c) => [c, 'tug'] as [string, string]),
  ];
  const lines = [
    `| scenario | ${contenders.map((c) => `${c} req/s (×nginx)`).join(' | ')} | ${pairs.map(([a, b]) => `${a} / ${b} | `).join('')}${contenders.map((c) => `${c} p99 ms`).join(' | ')} | errors |`,
    `|---|${contenders.map(() => '---:').join('|')}|${pairs.map(() => '---:|').join('')}${contenders.map(() => '---:').join('|')}|---:|`,
  ];
  for (const scenario of scenarios) {
    const row = (c: string) => results.find((r) => r.scenario === scenario && r.contender === c);
    const base = row('nginx')?.rps ?? NaN;
    // A contender a scenario does not run on (one started without HTTPS) shows a dash.
    const cell = (c: string, text: (r: ScenarioResult) => string) => {
      const r = row(c);
      return r === undefined ? '—' : text(r);
    };
    const rps = contenders.map((c) => cell(c, (r) => `${Math.round(r.rps).toLocaleString('en-US')} (${(r.rps / base).toFixed(2)})`));
    const ratios = pairs.map(([a, b]) => {
      const ratio = (row(a)?.rps ?? NaN) / (row(b)?.rps ?? NaN);
      return `${Number.isNaN(ratio) ? '—' : ratio.toFixed(2)} | `;
    });
    const p99 = contenders.map((c) => cell(c, (r) => r.p99.toFixed(2)));
    const errors = contenders.filter((c) => row(c) !== undefined).map((c) => `${c}: ${row(c)!.errors}`).join(', ');
    lines.push(`| ${scenario} | ${rps.join(' | ')} | ${ratios.join('')}${p99.join(' | ')} | ${errors} |`);
  }
  return lines.join('\n');
}

export function writeReport(dir: string, report: Report): { json: string; markdown: string; svg: string } {
  const json = join(dir, 'results.json');
  const markdown = join(dir, 'results.md');
  const svg = join(dir, 'results.svg');
  writeFileSync(json, `${JSON.stringify(report, null, 2)}\n`);
  const extras = Object.entries(report.extra).map(([name, value]) => `### ${name}\n\n\`\`\`json\n${JSON.stringify(value, null, 2)}\n\`\`\``);
  writeFileSync(markdown, [
    '# Tug vs nginx',
    '',
    `Machine: ${Object.entries(report.machine).map(([k, v]) => `${k} ${v}`).join(', ')}.`,
    `Settings: ${Object.entries(report.settings).map(([k, v]) => `${k}=${v}`).join(', ')}.`,
    '',
    'Medians of interleaved rounds; ratio to nginx in brackets (≥ 1.00 is as fast or faster); `tug / node-min`: Tug against the minimal',
    'Node proxy doing the same per-request work (bench/minimal-proxy.ts), i.e. what Tug\'s own code costs on top of Node\'s;',
    '`tug@N / tug`: the same router run by Node N against the bench\'s Node.',
    '',
    ratioTable(report.throughput),
    '',
    ...report.sections.flatMap((s) => [`## ${s.heading}`, '', s.markdown, '']),
    ...extras,
    '',
    ...(report.notes.length ? ['## Notes', '', ...report.notes.map((n) => `- ${n}`)] : []),
    '',
  ].join('\n'));
  writeFileSync(svg, chart(report.throughput));
  return { json, markdown, svg };
}

const COLORS: Record<string, string> = { nginx: '#009639', tug: '#1f6feb', 'node-min': '#8c959f', haproxy: '#b08800' };
/** Tug on another Node (tug@<major>). */
const OTHER_RUNTIME_COLOR = '#8250df';
const color = (contender: string) => COLORS[contender] ?? (contender.startsWith('tug@') ? OTHER_RUNTIME_COLOR : '#666');

function chart(results: readonly ScenarioResult[]): string {
  const contenders = [...new Set(results.map((r) => r.contender))];
  const scenarios = [...new Set(results.map((r) => r.scenario))];
  const width = 960;
  const panel = 260;
  const left = 70;
  const groupWidth = (width - left - 20) / scenarios.length;
  const barWidth = Math.min(28, (groupWidth - 16) / contenders.length);
  const parts: string[] = [];
  const drawPanel = (top: number, title: string, value: (r: ScenarioResult) => number, unit: string) => {
    const max = Math.max(...results.map(value)) * 1.1 || 1;
    parts.push(`<text x="${left}" y="${top - 8}" font-size="14" font-weight="bold">${title}</text>`);
    parts.push(`<line x1="${left}" y1="${top + panel}" x2="${width - 10}" y2="${top + panel}" stroke="#888"/>`);
    for (let i = 0; i <= 4; i++) {
      const y = top + panel - (panel * i) / 4;
      parts.push(`<text x="${left - 6}" y="${y + 4}" font-size="10" text-anchor="end">${format(max * i / 4)}${unit}</text>`);
      parts.push(`<line x1="${left}" y1="${y}" x2="${width - 10}" y2="${y}" stroke="#eee"/>`);
    }
    scenarios.forEach((scenario, si) => {
      const x0 = left + si * groupWidth + 8;
      contenders.forEach((c, ci) => {
        const r = results.find((x) => x.scenario === scenario && x.contender === c);
        if (!r) return;
        const h = (value(r) / max) * panel;
        parts.push(`<rect x="${x0 + ci * barWidth}" y="${top + panel - h}" width="${barWidth - 2}" height="${h}" fill="${color(c)}"><title>${c} ${scenario}: ${format(value(r))}${unit}</title></rect>`);
      });
      parts.push(`<text x="${x0 + (contenders.length * barWidth) / 2}" y="${top + panel + 14}" font-size="10" text-anchor="middle">${escape(scenario)}</text>`);
    });
  };
  drawPanel(30, 'Requests per second (median)', (r) => r.rps, '');
  drawPanel(30 + panel + 70, 'p99 latency, ms (median of rounds)', (r) => r.p99, '');
  contenders.forEach((c, i) => {
    const x = width - 10 - (contenders.length - i) * 85;
    parts.push(`<rect x="${x}" y="6" width="12" height="12" fill="${color(c)}"/><text x="${x + 16}" y="16" font-size="12">${c}</text>`);
  });
  const height = 30 + 2 * panel + 110;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif"><rect width="100%" height="100%" fill="white"/>${parts.join('')}</svg>\n`;
}

function format(n: number): string {
  return n >= 1000 ? `${(n / 1000).toFixed(n >= 10_000 ? 0 : 1)}k` : n >= 10 ? n.toFixed(0) : n.toFixed(2);
}

function escape(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;');
}
