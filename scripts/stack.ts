// The local stack behind `scripts/stack.sh`: a local etcd (data in .stack/),
// two example backends announced in etcd under a lease this script keeps
// alive, the router in front of them, and the registry on Azurite (the Azure
// Blob emulator, data in .stack/). It prints what to curl and runs until
// Ctrl-C / SIGTERM, then ends every process it started, by pid.
//
// The terminal shows only Tug's own logs (readable: TUG_LOG_FORMAT=pretty unless
// set otherwise) and the summary; etcd, Azurite and the example backends write to
// .stack/etcd.log, .stack/azurite.log and .stack/backends.log.
import { spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, mkdirSync, openSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Etcd3 } from 'etcd3';

const root = fileURLToPath(new URL('..', import.meta.url));
const env = (name: string, fallback: string) => process.env[name] ?? fallback;
const ETCD_CLIENT = Number(env('STACK_ETCD_PORT', '12379'));
const ETCD_PEER = ETCD_CLIENT + 1;
const HTTP = env('STACK_HTTP', '127.0.0.1:8080');
// The router's TLS listener; it serves the certificates put under /tls/ in the stack's etcd.
const HTTPS = env('STACK_HTTPS', '127.0.0.1:8443');
const ADMIN = env('STACK_ADMIN', '127.0.0.1:9090');
const DOMAIN = env('STACK_DOMAIN', 'tug.localhost');
const etcdUrl = `http://127.0.0.1:${ETCD_CLIENT}`;
const REGISTRY = env('STACK_REGISTRY', '127.0.0.1:5000');
const REGISTRY_ADMIN = env('STACK_REGISTRY_ADMIN', '127.0.0.1:5001');
const AZURITE_PORT = Number(env('STACK_AZURITE_PORT', '10000'));
// Azurite's well-known development account.
const AZURITE_CONNECTION = `DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:${AZURITE_PORT}/devstoreaccount1;`;

const children: ChildProcess[] = [];
const servers: Server[] = [];

const STACK_DIR = `${root}.stack`;
const LOG_FORMAT = process.env.TUG_LOG_FORMAT ?? 'pretty';

/** Starts a process; its output goes to the terminal, or to `logFile` (appended) for the non-Tug ones. */
function start(name: string, command: string, args: string[], extraEnv: Record<string, string> = {}, logFile?: string): ChildProcess {
  const output = logFile === undefined ? 'inherit' : openSync(logFile, 'a');
  const child = spawn(command, args, { stdio: ['ignore', output, output], env: { ...process.env, ...extraEnv } });
  children.push(child);
  child.once('exit', (code, signal) => {
    if (!stopping) {
      console.error(`stack: ${name} exited (code ${code}, signal ${signal})${logFile === undefined ? '' : `; see ${logFile}`}; stopping the stack`);
      void stop(1);
    }
  });
  return child;
}

let stopping = false;
async function stop(code: number): Promise<never> {
  stopping = true;
  // Last started, first stopped, one at a time: Tug's processes end while etcd and Azurite still answer.
  for (const child of children.reverse()) {
    if (child.exitCode !== null || child.signalCode !== null) continue;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  for (const server of servers) server.close();
  process.exit(code);
}
process.on('SIGINT', () => void stop(0));
process.on('SIGTERM', () => void stop(0));

async function waitHealthy(url: string, what: string, anyAnswer = false): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      const res = await fetch(url);
      if (res.ok || anyAnswer) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  console.error(`stack: ${what} did not become healthy at ${url}`);
  await stop(1);
}

function exampleBackend(name: string): Promise<number> {
  const server = createServer((req, res) => {
    appendFileSync(BACKENDS_LOG, `${new Date().toISOString()} ${name} ${req.method} ${req.url} Host: ${req.headers.host}\n`);
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`hello from ${name} (${req.method} ${req.url}, Host: ${req.headers.host}, X-Forwarded-For: ${req.headers['x-forwarded-for']})\n`);
  });
  servers.push(server);
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

mkdirSync(STACK_DIR, { recursive: true });
const ETCD_LOG = `${STACK_DIR}/etcd.log`;
const AZURITE_LOG = `${STACK_DIR}/azurite.log`;
const BACKENDS_LOG = `${STACK_DIR}/backends.log`;
start('etcd', 'etcd', [
  '--name', 'stack', '--data-dir', `${root}/.stack/etcd`,
  '--listen-client-urls', etcdUrl, '--advertise-client-urls', etcdUrl,
  '--listen-peer-urls', `http://127.0.0.1:${ETCD_PEER}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${ETCD_PEER}`,
  '--initial-cluster', `stack=http://127.0.0.1:${ETCD_PEER}`, '--log-level', 'warn',
], {}, ETCD_LOG);
await waitHealthy(`${etcdUrl}/health`, 'etcd');

const ports = [await exampleBackend('backend-1'), await exampleBackend('backend-2')];
const etcd = new Etcd3({ hosts: etcdUrl });
// The example announcements live on a lease, as real instances' do: they vanish when this script dies.
const lease = etcd.lease(10);
lease.on('lost', () => console.error('stack: lease lost; the example backends are no longer announced'));
for (const [i, port] of ports.entries()) await lease.put(`/services/hello/@${i + 1}`).value(`127.0.0.1:${port}`);
await etcd.put('/routes/hello-localhost').value(JSON.stringify({ hosts: ['localhost'], service: 'hello' }));

start('router', process.execPath, [`${root}/bin/tug.ts`, 'router', '--http', HTTP, '--https', HTTPS, '--admin', ADMIN, '--etcd', etcdUrl, '--domain', DOMAIN], { TUG_LOG_FORMAT: LOG_FORMAT });
await waitHealthy(`http://${ADMIN}/healthz`, 'router');

const azuriteBlob = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');
start('azurite', process.execPath, [
  azuriteBlob, '--silent', '--disableTelemetry', '--skipApiVersionCheck', '--loose',
  '--blobHost', '127.0.0.1', '--blobPort', String(AZURITE_PORT), '--location', `${root}/.stack/azurite`,
], {}, AZURITE_LOG);
await waitHealthy(`http://127.0.0.1:${AZURITE_PORT}/devstoreaccount1?comp=list`, 'azurite', true);
start('registry', process.execPath, [
  `${root}/bin/tug.ts`, 'registry', '--listen', REGISTRY, '--admin', REGISTRY_ADMIN, '--container', 'registry',
  '--upload-dir', `${root}/.stack/registry/uploads`, '--cache-dir', `${root}/.stack/registry/cache`, '--cache-size', '2GiB',
], { AZURE_STORAGE_CONNECTION_STRING: AZURITE_CONNECTION, TUG_LOG_FORMAT: LOG_FORMAT });
await waitHealthy(`http://${REGISTRY}/v2/`, 'registry');

console.log(`
Tug local stack is up.
  dashboard http://${ADMIN}/   (the router's admin listener; also /metrics, /routes, /healthz)
  etcd      ${etcdUrl}
  router    http://${HTTP}, https://${HTTPS} (certificates from /tls/<name> in etcd)
  backends  ${ports.map((p) => `127.0.0.1:${p}`).join(', ')} announced as /services/hello/@1 and @2
  registry  http://${REGISTRY}   (on Azurite http://127.0.0.1:${AZURITE_PORT}, container "registry")
            its dashboard http://${REGISTRY_ADMIN}/   (also /metrics, /healthz)

Try:
  curl -H 'Host: hello.${DOMAIN}' http://${HTTP}/        # round-robins over both backends
  curl http://${HTTP.replace('127.0.0.1', 'localhost')}/                 # the /routes/hello-localhost rule
  curl http://${ADMIN}/routes                      # the routing table
  curl http://${ADMIN}/healthz
  npx tug status --etcd ${etcdUrl}      # every router, service, route and expiring certificate, from etcd
  ETCDCTL_API=3 etcdctl --endpoints ${etcdUrl} get --prefix /services/
  curl http://${REGISTRY}/v2/_catalog                      # the registry's repositories
  skopeo copy --dest-tls-verify=false oci:<layout-dir>:<tag> docker://${REGISTRY}/app:<tag>

Output of etcd, Azurite and the example backends: .stack/etcd.log, .stack/azurite.log, .stack/backends.log.
Ctrl-C stops the stack.
`);
