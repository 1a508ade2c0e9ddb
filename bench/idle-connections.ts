// Memory with many idle keep-alive client connections: each connection sends
// one request, reads the answer and stays open; then the router's RSS is read,
// 1 s after the last connection and again once the workers have gone quiet
// (router/process/quiet-heap.ts gives back the young generation the burst of
// connections grew, 5–10 s after it).
import { connect, type Socket } from 'node:net';
import { HOST, type Contender } from './contenders.ts';
import { processTree, rss } from './processes.ts';
import { QUIET_CHECK_INTERVAL } from '../router/process/quiet-heap.ts';

export interface IdleConnections {
  readonly connections: number;
  readonly rssMiB: { primary: number; workers: number[]; workersBefore: number[]; workersSettled: number[] };
  /** When workersSettled was read, s after the last connection. */
  readonly settledAfter: number;
}

export async function measureIdleConnections(contender: Contender, count: number): Promise<IdleConnections> {
  const pids = processTree(contender.pid);
  const before = pids.slice(1).map((p) => mib(rss(p)));
  const sockets: Socket[] = [];
  try {
    for (let i = 0; i < count; i += 500) {
      await Promise.all(Array.from({ length: Math.min(500, count - i) }, () => openOne(contender.port).then((s) => sockets.push(s))));
    }
    await new Promise((r) => setTimeout(r, 1000));
    const workers = pids.slice(1).map((p) => mib(rss(p)));
    const primary = mib(rss(contender.pid));
    // Two quiet checks and a margin: the first check may still see the burst.
    const settledAfter = (2 * QUIET_CHECK_INTERVAL + 2000) / 1000;
    await new Promise((r) => setTimeout(r, settledAfter * 1000 - 1000));
    const workersSettled = pids.slice(1).map((p) => mib(rss(p)));
    return { connections: sockets.length, rssMiB: { primary, workers, workersBefore: before, workersSettled }, settledAfter };
  } finally {
    for (const s of sockets) s.destroy();
  }
}

function openOne(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    socket.setTimeout(30_000, () => socket.destroy(new Error('idle connection setup timed out')));
    socket.once('error', reject);
    socket.once('connect', () => socket.write(`GET /small HTTP/1.1\r\nHost: ${HOST}\r\n\r\n`));
    socket.once('data', () => {
      socket.setTimeout(0);
      resolve(socket);
    });
  });
}

function mib(bytes: number): number {
  return Math.round(bytes / 2 ** 20);
}
