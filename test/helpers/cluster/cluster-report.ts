// The cluster suite's Markdown report (test/cluster/REPORT.md): each test file
// owns one section, rewritten in place between its markers, so the files can
// run separately and the report always holds the latest measured figures.
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';

export const REPORT_PATH = fileURLToPath(new URL('../../cluster/REPORT.md', import.meta.url));

const HEADER = `# The cluster under faults — measured

Written by the cluster suite (\`test/cluster/*.test.ts\`, run by \`scripts/test.sh\`); each test file rewrites
its own section on every run with that run's figures, so a section's date says when it was measured.

**The fixture** (\`test/helpers/cluster/\`): three hosts, each a Linux network namespace with a veth link
to a bridge in the root namespace (as root with iproute2; otherwise loopback addresses 127.0.0.11–13,
where a host cannot be cut off and that fault is skipped — each section says which was used). Every
host runs one member of a 3-member etcd (Debian's etcd 3.4), \`tug router\` (one worker; \`--drain-delay 1s
--drain-timeout 5s --connect-timeout 1s\`, other flags at their defaults), \`tug registry\` (on one
Azurite in the root namespace, in the faults file) and an instance of the app \`app\` (a small
node:http server) with its \`tug announce\` sidekick (lease TTL 3 s, health check every 1 s). A node's
router and announcer talk to the node's own etcd member, as the units' \`--etcd http://127.0.0.1:2379\` do. In front, a TCP load balancer playing Azure's:
round-robin of new connections over the routers its probe finds healthy (GET \`/healthz\` on the admin
port every 200 ms, 500 ms timeout, down after 2 failures, up after 2 successes); it never retries a
connection, and an established flow stays with its router.

**The load**: undici keep-alive connections through the LB (4; 16 for the router restart and the
host cut), idempotent GETs at a bounded rate (100–300 requests/s), every request recorded. A request **fails**
unless it gets a complete \`200\` (the app answers nothing else): a connection error or reset
(\`UND_ERR_SOCKET\`, \`ECONNRESET\`), a client timeout after 5 s (\`timeout\`), a 502/503/504, or any other status. Nothing is retried by the client.
"Held" means the issue's target for that fault was met in this run.
`;

export interface FaultFigures {
  readonly fault: string;
  readonly target: string;
  readonly sent: number;
  readonly failed: number;
  /** Failed requests by status or error code. */
  readonly failures: Record<string, number>;
  readonly recovery: string;
  readonly held: boolean;
  readonly notes?: string;
}

export class ClusterReport {
  readonly #section: string;
  readonly #title: string;
  readonly #rows: FaultFigures[] = [];
  readonly #lines: string[] = [];

  constructor(section: string, title: string) {
    this.#section = section;
    this.#title = title;
  }

  fault(figures: FaultFigures): void {
    this.#rows.push(figures);
  }

  /** A free line of Markdown under the table. */
  line(text: string): void {
    this.#lines.push(text);
  }

  write(context: { network: string; wallMs: number }): void {
    const table = this.#rows.length === 0 ? [] : [
      '| fault | target | requests sent | failed | failures by kind | recovery | held |',
      '|---|---|---:|---:|---|---|---|',
      ...this.#rows.map((r) => `| ${r.fault} | ${r.target} | ${r.sent} | ${r.failed} | ${Object.entries(r.failures).map(([k, v]) => `${k}: ${v}`).join(', ') || '—'} | ${r.recovery} | ${r.held ? 'yes' : '**no**'} |`),
      '',
      ...this.#rows.filter((r) => r.notes).map((r) => `- ${r.fault}: ${r.notes}`),
    ];
    const body = [
      `## ${this.#title}`,
      '',
      `${new Date().toISOString()} · ${cpus().length} × ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB · Node ${process.version} · ${context.network} · ${(context.wallMs / 1000).toFixed(1)} s`,
      '',
      ...table,
      ...(this.#lines.length > 0 ? ['', ...this.#lines] : []),
    ].join('\n');
    const start = `<!-- section:${this.#section} -->`;
    const end = `<!-- /section:${this.#section} -->`;
    let text = existsSync(REPORT_PATH) ? readFileSync(REPORT_PATH, 'utf8') : HEADER;
    // The header is this file's: replace whatever precedes the first section.
    const firstSection = text.indexOf('<!-- section:');
    text = HEADER + (firstSection >= 0 ? `\n${text.slice(firstSection)}` : '');
    const block = `${start}\n${body}\n${end}`;
    const from = text.indexOf(start);
    const to = text.indexOf(end);
    text = from >= 0 && to > from ? text.slice(0, from) + block + text.slice(to + end.length) : `${text.trimEnd()}\n\n${block}\n`;
    writeFileSync(REPORT_PATH, text);
  }
}
