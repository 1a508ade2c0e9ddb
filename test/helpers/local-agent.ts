// Plays fleet's agent for the rendered app units on this machine, so a rollout
// runs end to end: `<app>@N.service` starts an in-process HTTP server standing
// in for the container (its behaviour chosen by the image reference in the
// unit's ExecStart), and `<app>-announce@N.service` runs the real `tug
// announce` with the arguments from the unit's ExecStart — %i expanded and
// ${COREOS_PRIVATE_IPV4}:<port> pointed at that server. Every server and
// process started here is ended in stop() or close().
import { createServer, type Server } from 'node:http';
import type { Socket } from 'node:net';
import { AnnouncerProcess } from './announcer.ts';
import type { AgentUnit, FleetAgent } from './fleet-cluster.ts';

/** What an image does: serve (version in the body), answer 500 on /healthz, or fail to start (pull error). */
export type ImageBehaviour = { kind: 'serve'; version: string } | { kind: 'unhealthy' } | { kind: 'missing' };

interface AppInstance {
  readonly server: Server;
  readonly sockets: Set<Socket>;
  readonly port: number;
}

export class LocalAgent implements FleetAgent {
  readonly #images: (image: string, instance: string) => ImageBehaviour;
  readonly #announceArgs: readonly string[];
  readonly #apps = new Map<string, Promise<AppInstance>>();
  readonly #announcers = new Map<string, AnnouncerProcess>();
  /** Served request counts by version, to see which version answered. */
  readonly served = new Map<string, number>();

  /** `announceArgs` are appended to the unit's own (faster health checks and TTL for tests). */
  constructor(images: (image: string, instance: string) => ImageBehaviour, announceArgs: readonly string[] = []) {
    this.#images = images;
    this.#announceArgs = announceArgs;
  }

  async start(unit: AgentUnit): Promise<void> {
    const { kind, app, instance } = classify(unit.name);
    const execStart = unit.options.find((o) => o.section === 'Service' && o.name === 'ExecStart')?.value ?? '';
    if (kind === 'app') {
      const started = this.#startApp(execStart.split(/\s+/).at(-1)!, instance);
      this.#apps.set(`${app}@${instance}`, started);
      await started;
      return;
    }
    const appInstance = this.#apps.get(`${app}@${instance}`);
    if (appInstance === undefined) throw new Error(`${unit.name}: BindsTo ${app}@${instance}.service, which is not running`);
    const { port } = await appInstance;
    const words = execStart.split(/\s+/);
    const args = words.slice(words.indexOf('announce') + 1)
      .map((w) => w.replace(/%i/g, instance).replace(/\$\{COREOS_PRIVATE_IPV4\}:\d+/g, `127.0.0.1:${port}`));
    this.#announcers.set(unit.name, new AnnouncerProcess([...args, ...this.#announceArgs]));
  }

  async stop(unit: AgentUnit): Promise<void> {
    const { kind, app, instance } = classify(unit.name);
    if (kind === 'announce') {
      const announcer = this.#announcers.get(unit.name);
      this.#announcers.delete(unit.name);
      await announcer?.stop('SIGTERM');
      return;
    }
    const started = this.#apps.get(`${app}@${instance}`);
    this.#apps.delete(`${app}@${instance}`);
    const appInstance = await started?.catch(() => null);
    if (appInstance) await drainAndClose(appInstance);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#announcers.values()].map((a) => a.stop('SIGKILL')));
    this.#announcers.clear();
    const apps = await Promise.all([...this.#apps.values()].map((p) => p.catch(() => null)));
    this.#apps.clear();
    await Promise.all(apps.map((a) => (a ? drainAndClose(a) : undefined)));
  }

  async #startApp(image: string, instance: string): Promise<AppInstance> {
    const behaviour = this.#images(image, instance);
    if (behaviour.kind === 'missing') throw new Error(`pull ${image}: not found`);
    const sockets = new Set<Socket>();
    const server = createServer((req, res) => {
      if (behaviour.kind === 'unhealthy') {
        res.writeHead(500, { 'content-type': 'text/plain' }).end('broken\n');
        return;
      }
      if (req.url !== '/healthz') this.served.set(behaviour.version, (this.served.get(behaviour.version) ?? 0) + 1);
      res.writeHead(200, { 'content-type': 'text/plain', 'x-version': behaviour.version }).end(`${behaviour.version}\n`);
    });
    server.on('connection', (socket: Socket) => {
      sockets.add(socket);
      socket.once('close', () => sockets.delete(socket));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { server, sockets, port: (server.address() as { port: number }).port };
  }
}

function classify(name: string): { kind: 'app' | 'announce'; app: string; instance: string } {
  const match = /^(.+?)(-announce)?@([^.]+)\.service$/.exec(name);
  if (!match) throw new Error(`the local agent plays app and announce instances only, not ${name}`);
  return { kind: match[2] ? 'announce' : 'app', app: match[1], instance: match[3] };
}

/** As `docker stop` on an app that drains: no new connections, in-flight requests finish (bounded), then close. */
async function drainAndClose(app: AppInstance): Promise<void> {
  const closed = new Promise<void>((resolve) => app.server.close(() => resolve()));
  app.server.closeIdleConnections();
  const timer = setTimeout(() => { for (const s of app.sockets) s.destroy(); }, 2000);
  await closed;
  clearTimeout(timer);
}
