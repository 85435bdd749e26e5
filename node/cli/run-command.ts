// `meshcc run -- COMMAND…`: for CI runners and `docker build` steps, where no agent runs. A
// short-lived agent (client only unless --serve) lives for the life of the command in a
// temporary home, joins the mesh, and the command runs with meshcc's compilers first on PATH.
// At the end: one summary line, the command's exit code, and nothing left behind. Without a
// mesh the command still runs, locally, and says so.
import { spawn } from 'node:child_process';
import { existsSync, promises as fs, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MeshccError } from '../../protocol/errors.js';
import { Agent } from '../agent.js';
import { loadConfig, meshccHome } from '../config.js';
import { createLogger } from '../log.js';
import { MESH_KEY_FILE } from '../mesh/keys.js';
import { readInvitation } from '../mesh/invite-token.js';
import { writeInitialMembers } from '../mesh/membership.js';
import { ensureClient } from '../native-client.js';
import type { StatsSnapshot } from '../stats.js';

export interface RunOptions {
  command: string[];
  /** Run jobs for the mesh too while the command runs. */
  serve: boolean;
  peer: string[];
  peersDns?: string;
  /** An invitation token (meshcc invite): the mesh to join for this command. */
  join?: string;
  /** How long to wait for the mesh before the command starts. */
  waitMs: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The key of this user's agent home, for a run without MESHCC_MESH_KEY. */
function userMeshKeyHex(): string | undefined {
  const file = path.join(meshccHome(), MESH_KEY_FILE);
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

function seconds(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function mib(bytes: number): string {
  return `${(bytes / (1 << 20)).toFixed(1)} MiB`;
}

export function summaryLine(s: StatsSnapshot, wallMs: number, cores: number): string {
  const hits = s.cache?.hits ?? 0;
  const compiles = s.counts.local + s.counts.job + s.counts.remote + s.counts.fallback + hits;
  const fallback = Object.entries(s.fallbackByReason).map(([k, v]) => `${k} ${v}`).join(', ');
  // Why compiles stayed here, beyond a free local slot (not distributable, the scheduler's choice, …).
  const localWhy = Object.entries(s.routes.local.byReason)
    .filter(([k]) => k !== 'local-slot')
    .map(([k, v]) => `${k} ${v}`)
    .join(', ');
  const peers = Object.values(s.perPeer).filter((p) => p.jobs > 0).length;
  const remoteMs = s.routes.remote.ms;
  return (
    `meshcc: ${compiles} compiles: ${s.cache && s.cache.mode !== 'off' ? `${hits} cache hits, ` : ''}${s.counts.remote} remote, ${s.counts.local + s.counts.job} local${localWhy ? ` (${localWhy})` : ''}, ${s.counts.fallback} fallback${fallback ? ` (${fallback})` : ''}; ` +
    `${peers} peer${peers === 1 ? '' : 's'} used; ${mib(s.bytesSent)} sent, ${mib(s.bytesReceived)} received; ${seconds(wallMs)}` +
    (remoteMs > 0 ? `; peers compiled for ${seconds(remoteMs)} (about ${seconds(remoteMs / cores)} of this machine's ${cores} cores)` : '')
  );
}

export async function runWithMesh(options: RunOptions): Promise<number> {
  const [program, ...args] = options.command;
  if (!program) throw new MeshccError('usage', 'usage: meshcc run [options] -- COMMAND [ARGS…]');
  const masquerade = ensureClient().masquerade;
  const home = await fs.mkdtemp(path.join(os.tmpdir(), 'meshcc-run-'));
  const log = createLogger({ level: process.env.MESHCC_LOG_LEVEL ?? 'error' });
  const env: NodeJS.ProcessEnv = { ...process.env, MESHCC_HOME: home, MESHCC_HTTP: 'off' };
  delete env.MESHCC_SOCKET;
  const config = { ...loadConfig(env), ephemeral: true };
  // A client that serves nobody asks no router for a port mapping (a CI runner lives minutes).
  if (!options.serve) {
    config.slots = 0;
    config.portMapping = false;
  }
  config.peers = [...config.peers, ...options.peer];
  if (options.peersDns) config.peersDns = options.peersDns;
  if (options.join) {
    // A bad token must not fail the build: it says why in one line and the command runs locally.
    try {
      const invitation = await readInvitation(options.join);
      config.meshKeyHex = Buffer.from(invitation.key).toString('hex');
      await writeInitialMembers(home, invitation.mesh, [{ peerId: invitation.inviter, name: invitation.name, addresses: invitation.addresses, seenAt: 0 }]);
    } catch (err) {
      process.stderr.write(`meshcc: ${(err as Error).message}: compiling locally\n`);
      config.meshKeyHex = undefined;
      config.peers = [];
      delete config.peersDns;
      config.mdns = false;
    }
  }
  // The agent takes the key from MESHCC_MESH_KEY itself (config.meshKeyHex).
  const key = options.join ? config.meshKeyHex : (config.meshKeyHex ??= userMeshKeyHex());
  let agent: Agent | undefined;
  const started = Date.now();
  try {
    agent = new Agent(config, log);
    await agent.start();
    const peers = key ? await waitForMesh(agent, options.waitMs) : 0;
    if (!key) process.stderr.write('meshcc: no mesh key (MESHCC_MESH_KEY, or an agent home with one): compiling locally\n');
    else if (peers === 0) process.stderr.write(`meshcc: no peer of the mesh answered within ${seconds(options.waitMs)}: compiling locally\n`);
    const code = await runCommand(program, args, { ...env, MESHCC_SOCKET: config.socketPath, PATH: `${masquerade}:${process.env.PATH ?? '/usr/bin:/bin'}` });
    process.stderr.write(`${summaryLine(agent.snapshot(), Date.now() - started, os.availableParallelism())}\n`);
    return code;
  } finally {
    await agent?.stop().catch(() => undefined);
    await fs.rm(home, { recursive: true, force: true });
    await fs.rm(config.jobsDir, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Waits for peers with slots that jobs may go to (their first, and a moment for the others);
 * returns how many. The compilers need no waiting: this agent identifies each when the command
 * first uses it, and that compile waits for its id.
 */
async function waitForMesh(agent: Agent, waitMs: number): Promise<number> {
  const deadline = Date.now() + waitMs;
  let firstSeen: number | undefined;
  for (;;) {
    // Only peers a job may go to: one reached through a relay alone (a friend's machine behind
    // NAT) would let the command start before a direct one is connected, all of it local.
    const unusable = agent.unusableForJobs();
    const withSlots = agent.meshStatus().filter((r) => !r.self && r.slots > 0);
    const peers = withSlots.filter((r) => r.link !== 'none' && !unusable.has(r.peerId)).length;
    if (peers > 0) firstSeen ??= Date.now();
    // Every member the join made known is ready: nobody else to wait for.
    if (peers > 0 && peers === withSlots.length) return peers;
    // Others of the mesh arrive within a moment of the first.
    if (firstSeen !== undefined && Date.now() - firstSeen > 500) return peers;
    if (Date.now() > deadline) return peers;
    await sleep(50);
  }
}

function runCommand(program: string, args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve) => {
    const child = spawn(program, args, { stdio: 'inherit', env });
    const forward = (signal: NodeJS.Signals) => child.kill(signal);
    process.on('SIGINT', forward);
    process.on('SIGTERM', forward);
    const done = (code: number) => {
      process.off('SIGINT', forward);
      process.off('SIGTERM', forward);
      resolve(code);
    };
    child.once('error', (err: NodeJS.ErrnoException) => {
      process.stderr.write(`meshcc: cannot run ${program}: ${err.code === 'ENOENT' ? 'no such command' : err.message}\n`);
      done(err.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => done(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0)));
  });
}
