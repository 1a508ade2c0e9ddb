// Entry point of a router worker process (forked by the supervisor).
import { runWorker } from './worker.ts';

await runWorker();
