// Wires the router: config in, supervisor up, signals to a graceful stop.
import { createLogger } from '../common/logger.ts';
import type { RouterConfig } from './config.ts';
import { RouterSupervisor } from './process/supervisor.ts';

export async function startRouter(config: RouterConfig): Promise<void> {
  const log = createLogger(config.logLevel, {}, config.logFormat);
  const supervisor = new RouterSupervisor(config, log);
  const stop = () => {
    void supervisor.stop().then(() => {
      log.flush();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  try {
    await supervisor.start();
  } catch (err) {
    log.fatal({ component: 'router', err: (err as Error).message }, 'router failed to start');
    log.flush();
    await supervisor.stop().catch(() => {});
    process.exit(1);
  }
}
