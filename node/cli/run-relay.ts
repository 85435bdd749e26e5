// `meshcc relay`: an agent for a small public machine (a one-core VPS) that meshes without a
// reachable member need: it offers circuit relay v2 and the member list to members (the mesh
// key gates every connection, revoked members are refused) and runs no jobs. It listens on a
// fixed port (members dial it by the address in their invitation), asks no router for a port
// mapping, does not look for LAN peers, and skips the start-up compile benchmark.
import type { AgentConfig } from '../config.js';
import { runAgent } from './run-agent.js';

export const RELAY_PORT = 7624;

/** What makes an agent a relay, whatever the environment says otherwise. */
export function relayConfig(config: AgentConfig, env: NodeJS.ProcessEnv = process.env): void {
  config.slots = 0;
  config.localSlots = 0;
  config.relay = true;
  config.relayedJobs = false;
  config.speed = 1;
  config.portMapping = false;
  config.scheduler = false;
  config.mdns = env.MESHCC_MDNS === '1';
  if (!env.MESHCC_LISTEN) config.listen = [`/ip4/0.0.0.0/tcp/${RELAY_PORT}`];
}

export async function runRelay(options: { pretty?: boolean; level?: string; listen?: string[] }): Promise<void> {
  await runAgent(options, (config) => relayConfig(config));
}
