// `meshcc agent`: start, log, and stop cleanly on SIGINT/SIGTERM.
import { Agent } from '../agent.js';
import { loadConfig, type AgentConfig } from '../config.js';
import { createLogger } from '../log.js';
import { ensureClient } from '../native-client.js';

export async function runAgent(options: { pretty?: boolean; level?: string; listen?: string[]; peer?: string[]; peersDns?: string }, adjust?: (config: AgentConfig) => void): Promise<void> {
  const log = createLogger(options);
  const config = loadConfig();
  adjust?.(config);
  if (options.listen?.length) config.listen = options.listen;
  if (options.peer?.length) config.peers = [...config.peers, ...options.peer];
  if (options.peersDns) config.peersDns = options.peersDns;
  try {
    // The native spawner is built with the native client (an installed package builds both on
    // first use); without it the agent starts its programs through a Node helper and prlimit.
    ensureClient();
  } catch (err) {
    log.warn({ err: (err as Error).message }, 'the native spawner could not be built: jobs start through the Node helper');
  }
  const agent = new Agent(config, log);
  try {
    await agent.start();
  } catch (err) {
    // What did start (the socket, the mesh) goes, so that nothing is left behind for the next start.
    await agent.stop().catch(() => undefined);
    throw err;
  }
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
