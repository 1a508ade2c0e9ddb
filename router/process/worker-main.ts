// Entry point of a router worker process (forked by the supervisor). The
// primary imports it too, to fill the compile cache (worker-compile-cache.ts).
import cluster from 'node:cluster';
import { runWorker } from './worker.ts';

if (cluster.isWorker) await runWorker();
