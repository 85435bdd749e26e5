// The agent's knobs: environment variables with working defaults, so no config file is needed.
import { createHash } from 'node:crypto';
import { cacheConfig, type CacheConfig } from './cache/policy.js';
import { accessSync, constants, statfsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { MeshccError } from '../protocol/errors.js';
import { parseDnsTarget } from './mesh/dns-peers.js';

export interface AgentConfig {
  home: string;
  socketPath: string;
  /** Jobs this agent executes at once (its own and, later, the mesh's). */
  slots: number;
  /** This machine's own distributable jobs that run locally as plain commands. */
  localSlots: number;
  storeBytes: number;
  jobTimeoutMs: number;
  /** CPU seconds per process of a sandboxed job (MESHCC_JOB_CPU_S; by default the job timeout). */
  jobCpuSeconds?: number;
  /** Address space per process of a sandboxed job (MESHCC_JOB_MEMORY_MB). */
  jobMemoryBytes: number;
  /** Largest file a sandboxed job may write (MESHCC_JOB_OUTPUT_MB). */
  jobOutputFileBytes: number;
  /** Niceness of sandboxed jobs (MESHCC_JOB_NICE, 0-19; icecream's and distcc's default, 5). */
  jobNice: number;
  /** Bound of the installed toolchains (MESHCC_TOOLCHAIN_CACHE_MB), least recently used evicted. */
  toolchainCacheBytes: number;
  /** Where job roots are built: a tmpfs when there is one, because a job root is
   *  hundreds of small files (measured here: 1.3 ms per file created on ext4, 30 µs on tmpfs). */
  jobsDir: string;
  /** What the agent knows of this machine's compilers, shared by its agents (MESHCC_CACHE_DIR). */
  toolchainKnowledgeDir: string;
  /** libp2p listen multiaddrs (MESHCC_LISTEN, comma-separated; `--listen`). */
  listen: string[];
  /** Peers to dial by address (MESHCC_PEERS, comma-separated; `--peer`). */
  peers: string[];
  /** A DNS name (NAME[:PORT]) resolving to agents to dial, e.g. a Kubernetes headless Service (MESHCC_PEERS_DNS; `--peers-dns`). */
  peersDns?: string;
  /** LAN discovery with multicast DNS (MESHCC_MDNS=0 turns it off). */
  mdns: boolean;
  /** A fixed speed score (MESHCC_SPEED) instead of the start-up benchmark. */
  speed?: number;
  /** Fraction of remote jobs also compiled locally and compared (MESHCC_VERIFY_RATE, 0..1). */
  verifyRate: number;
  /** The mesh-wide result cache (MESHCC_CACHE, MESHCC_CACHE_MB): node/cache/policy.ts. */
  cache: CacheConfig;
  /** How long a peer that failed twice in a row gets no jobs (MESHCC_BACKOFF_S). */
  backoffMs: number;
  /** A remote job is hedged locally only after running at least this long (MESHCC_HEDGE_MIN_S). */
  hedgeMinMs: number;
  /** Where the monitor page, /metrics and /healthz are served (MESHCC_HTTP=host:port, `off` for
   *  nowhere); when the default port is taken (another agent), any free port on loopback. */
  http?: { host: string; port: number; fixed: boolean };
  /** The mesh key in hex (MESHCC_MESH_KEY, e.g. from a Kubernetes Secret): replaces the home's key at start. */
  meshKeyHex?: string;
  /** The name the mesh shows for this agent (MESHCC_NAME; default the host name). */
  name?: string;
  /** Offer circuit relay v2 to members (MESHCC_RELAY=0 turns it off; it is only used by members
   *  that cannot be dialled, and only while this agent is reachable itself). */
  relay: boolean;
  /** Send jobs to peers reached only through a relay (MESHCC_RELAYED_JOBS=1; default off: a job
   *  over a relay is slow and costs the relay's owner). */
  relayedJobs: boolean;
  /** Ask the home router to map the mesh port by NAT-PMP or UPnP IGD (MESHCC_PORT_MAPPING=0 turns it off). */
  portMapping: boolean;
  /** May be elected scheduler (MESHCC_SCHEDULER=0: never; a relay never is, since every
   *  placement would cross the internet to it). */
  scheduler: boolean;
  /** An agent that lives for one command in a home of its own (`meshcc run`): it identifies only
   *  the compilers the command uses, when they first come, and keeps no copy of what it gets
   *  from the mesh's cache, since its home goes with it. */
  ephemeral?: boolean;
}

export const DEFAULT_HTTP_PORT = 7625;

/** host:port, [v6]:port, :port or port; the host defaults to loopback. */
export function parseHostPort(raw: string, what: string): { host: string; port: number } {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]*)):)?(\d{1,5})$/.exec(raw.trim());
  const port = m ? Number(m[3]) : NaN;
  if (!m || port > 65535) throw new MeshccError('bad-config', `${what} must be host:port (e.g. 127.0.0.1:${DEFAULT_HTTP_PORT}), got '${raw}'`);
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

function httpConfig(env: NodeJS.ProcessEnv): AgentConfig['http'] {
  const raw = env.MESHCC_HTTP;
  if (raw === 'off' || raw === '0') return undefined;
  if (!raw) return { host: '127.0.0.1', port: DEFAULT_HTTP_PORT, fixed: false };
  return { ...parseHostPort(raw, 'MESHCC_HTTP'), fixed: true };
}

const TMPFS_MAGIC = 0x01021994;

/** Where an agent with this home keeps its job roots unless told (tmpfs when there is one). */
export function defaultJobsDir(home: string): string {
  try {
    if (statfsSync('/dev/shm').type === TMPFS_MAGIC) {
      accessSync('/dev/shm', constants.W_OK);
      return path.join('/dev/shm', `meshcc-${createHash('sha256').update(home).digest('hex').slice(0, 12)}`);
    }
  } catch {
    // no usable tmpfs: job roots go under MESHCC_HOME
  }
  return path.join(home, 'jobs');
}

function list(raw: string | undefined): string[] {
  return (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);
}

function wholeNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0) {
    throw new MeshccError('bad-config', `${name} must be a whole number ≥ 0, got '${raw}'`);
  }
  return value;
}

function niceness(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const value = wholeNumber(env, name, fallback);
  if (value > 19) throw new MeshccError('bad-config', `${name} must be a niceness from 0 to 19, got '${env[name]}'`);
  return value;
}

/** A limit: zero would stop every job before it starts. */
function positiveNumber(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isSafeInteger(value) || value < 1) {
    throw new MeshccError('bad-config', `${name} must be a whole number ≥ 1, got '${raw}'`);
  }
  return value;
}

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase();
  if (raw === undefined || raw === '') return fallback;
  if (['1', 'on', 'yes', 'true'].includes(raw)) return true;
  if (['0', 'off', 'no', 'false'].includes(raw)) return false;
  throw new MeshccError('bad-config', `${name} is 1 or 0 (on/off), got '${env[name]}'`);
}

export function meshccHome(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.MESHCC_HOME || path.join(os.homedir(), '.meshcc'));
}

/**
 * Where the agent keeps what it knows of this machine's compilers (their files, their
 * tarball ids): machine knowledge, not an agent's state, so every agent of the user shares it
 * (each compiler is hashed once per machine, not once per MESHCC_HOME). Entries are checked
 * against the files' stats before use, so a shared or stale file costs a hash, never a wrong id.
 */
export function toolchainKnowledgeDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.MESHCC_CACHE_DIR) return path.resolve(env.MESHCC_CACHE_DIR);
  return path.join(env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache'), 'meshcc');
}

export function socketPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.resolve(env.MESHCC_SOCKET || path.join(meshccHome(env), 'agent.sock'));
}

function fraction(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < 0 || value > 1) {
    throw new MeshccError('bad-config', `${name} must be a number from 0 to 1, got '${raw}'`);
  }
  return value;
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): AgentConfig {
  const cores = os.availableParallelism();
  const home = meshccHome(env);
  return {
    home,
    jobsDir: env.MESHCC_JOBS_DIR ? path.resolve(env.MESHCC_JOBS_DIR) : defaultJobsDir(home),
    toolchainKnowledgeDir: toolchainKnowledgeDir(env),
    socketPath: socketPath(env),
    slots: wholeNumber(env, 'MESHCC_SLOTS', cores),
    localSlots: wholeNumber(env, 'MESHCC_LOCAL_SLOTS', cores),
    storeBytes: wholeNumber(env, 'MESHCC_STORE_MB', 2048) * 1024 * 1024,
    jobTimeoutMs: wholeNumber(env, 'MESHCC_JOB_TIMEOUT_S', 600) * 1000,
    jobCpuSeconds: env.MESHCC_JOB_CPU_S ? positiveNumber(env, 'MESHCC_JOB_CPU_S', 1) : undefined,
    jobMemoryBytes: positiveNumber(env, 'MESHCC_JOB_MEMORY_MB', 8192) * 1024 * 1024,
    jobOutputFileBytes: positiveNumber(env, 'MESHCC_JOB_OUTPUT_MB', 1024) * 1024 * 1024,
    jobNice: niceness(env, 'MESHCC_JOB_NICE', 5),
    toolchainCacheBytes: positiveNumber(env, 'MESHCC_TOOLCHAIN_CACHE_MB', 4096) * 1024 * 1024,
    listen: list(env.MESHCC_LISTEN).length ? list(env.MESHCC_LISTEN) : ['/ip4/0.0.0.0/tcp/0'],
    peers: list(env.MESHCC_PEERS),
    ...(env.MESHCC_PEERS_DNS ? { peersDns: (parseDnsTarget(env.MESHCC_PEERS_DNS), env.MESHCC_PEERS_DNS) } : {}),
    mdns: env.MESHCC_MDNS !== '0',
    relay: flag(env, 'MESHCC_RELAY', true),
    relayedJobs: flag(env, 'MESHCC_RELAYED_JOBS', false),
    portMapping: flag(env, 'MESHCC_PORT_MAPPING', true),
    scheduler: flag(env, 'MESHCC_SCHEDULER', true),
    speed: env.MESHCC_SPEED ? wholeNumber(env, 'MESHCC_SPEED', 0) : undefined,
    verifyRate: fraction(env, 'MESHCC_VERIFY_RATE', 0),
    cache: cacheConfig(env, wholeNumber(env, 'MESHCC_STORE_MB', 2048) * 1024 * 1024),
    backoffMs: wholeNumber(env, 'MESHCC_BACKOFF_S', 30) * 1000,
    hedgeMinMs: wholeNumber(env, 'MESHCC_HEDGE_MIN_S', 5) * 1000,
    http: httpConfig(env),
    ...(env.MESHCC_NAME ? { name: env.MESHCC_NAME } : {}),
    ...(env.MESHCC_MESH_KEY ? { meshKeyHex: env.MESHCC_MESH_KEY.trim() } : {}),
  };
}
