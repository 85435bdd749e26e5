// `meshcc agent`: start, log, and stop cleanly on SIGINT/SIGTERM.
import { Agent } from '../agent.js';
import { loadConfig } from '../config.js';
import { createLogger } from '../log.js';

export async function runAgent(options: { pretty?: boolean; level?: string }): Promise<void> {
  const log = createLogger(options);
  const agent = new Agent(loadConfig(), log);
  await agent.start();
  await new Promise<void>((resolve) => {
    const stop = (signal: string) => {
      log.info({ signal }, 'stopping');
      agent.stop().then(resolve, resolve);
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGHUP', () => stop('SIGHUP'));
  });
}
