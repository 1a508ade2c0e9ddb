// An app instance of the cluster, run as its own process inside a host
// (`node app-instance.ts HOST PORT NAME`): answers every request with 200, its
// name in the body and in `X-Backend`, so a test sees which instance served.
// `GET /healthz` is what its announcer checks.
import { createServer } from 'node:http';

const [host, port, name] = process.argv.slice(2);
if (!host || !port || !name) {
  process.stderr.write('usage: app-instance.ts HOST PORT NAME\n');
  process.exit(2);
}
const body = `${name}\n`;
const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'text/plain', 'x-backend': name, 'content-length': Buffer.byteLength(body) });
    res.end(req.method === 'HEAD' ? undefined : body);
  });
});
server.keepAliveTimeout = 10_000;
server.listen(Number(port), host, () => process.stdout.write(`listening ${host}:${port}\n`));
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
});
