// Agent processes of one test mesh, and what tests ask them over their sockets.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { query } from '../../node/cli/query.js';
import { setMeshKey } from '../../node/mesh/keys.js';
import type { AgentStatus } from '../../node/mesh/mesh-service.js';
import type { StatsSnapshot } from '../../node/stats.js';
import { MASQUERADE, startAgentProcess, type AgentProcess } from './agent.js';
import { tempDir } from './tmp.js';
import { hostToolchainId } from './toolchain-id.js';

export async function statusOf(agent: AgentProcess): Promise<AgentStatus[]> {
  return (await query(agent.socketPath, { t: 'status', v: 1 })).agents as AgentStatus[];
}

export async function statsOf(agent: AgentProcess): Promise<StatsSnapshot> {
  return (await query(agent.socketPath, { t: 'stats', v: 1 })).stats as StatsSnapshot;
}

/** An agent of the mesh with this key (hex), once its mesh node is up; with its loopback address. */
export async function startMeshAgent(meshKeyHex: string, env: Record<string, string>): Promise<{ agent: AgentProcess; address: string; peerId: string }> {
  const home = tempDir('meshcc-home-');
  await setMeshKey(home, meshKeyHex);
  const agent = await startAgentProcess(env, home);
  const deadline = Date.now() + 15_000;
  for (;;) {
    const self = (await statusOf(agent)).find((r) => r.self);
    const address = self?.addresses.find((a) => a.startsWith('/ip4/127.0.0.1/'));
    if (self && address) return { agent, address, peerId: self.peerId };
    if (Date.now() > deadline) throw new Error('the agent never joined the mesh');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits until `client` lists `peerId` with the host's gcc toolchain, and has it itself. */
export async function untilPeerHasGcc(client: AgentProcess, peerId: string, timeoutMs = 90_000): Promise<void> {
  const gcc = await hostToolchainId(spawnSync('which', ['gcc'], { encoding: 'utf8' }).stdout.trim());
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const rows = await statusOf(client);
    const self = rows.find((r) => r.self);
    const peer = rows.find((r) => r.peerId === peerId);
    if (self?.toolchains.includes(gcc) && peer?.toolchains.includes(gcc)) return;
    if (Date.now() > deadline) throw new Error(`peer ${peerId} never listed gcc's toolchain`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Compiles a small C file with gcc through the client agent; resolves with gcc's exit status and the object. */
export function compileThrough(client: AgentProcess): Promise<{ status: number | null; stderr: string; object?: Buffer }> {
  const dir = tempDir();
  writeFileSync(path.join(dir, 'a.c'), 'int answer(int x) { return x * 6 + 0; }\n');
  return new Promise((resolve, reject) => {
    const child = spawn('gcc', ['-O2', '-c', 'a.c', '-o', 'a.o'], {
      cwd: dir,
      env: { ...process.env, MESHCC_HOME: client.home, PATH: `${MASQUERADE}:${process.env.PATH}` },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stderr, ...(status === 0 ? { object: readFileSync(path.join(dir, 'a.o')) } : {}) }));
  });
}
