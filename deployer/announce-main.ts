// Wires the announcer: etcd client, health check, signals (SIGTERM withdraws first, then exits 0).
import { createEtcdClient } from '../common/etcd-client.ts';
import { createLogger } from '../common/logger.ts';
import type { AnnounceConfig } from './announce-config.ts';
import { Announcer } from './announcer.ts';
import { createHealthCheck } from './health-check.ts';

export async function startAnnouncer(config: AnnounceConfig): Promise<void> {
  const log = createLogger(config.logLevel).child({ component: 'announce' });
  const client = createEtcdClient(config.etcd);
  const announcer = new Announcer(client, config, createHealthCheck(config.health, config.healthTimeout), log);
  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    void announcer.close().finally(() => {
      client.close();
      log.flush();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  announcer.start();
}
