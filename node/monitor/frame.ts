// The shape of the monitor's frames, as the agent sends them and as the page and `meshcc top`
// read them. Types only, with no import: the page's own TypeScript program includes this file.

export interface BuildWindow {
  number: number;
  startedAt: number;
  /** the last job's end while nothing runs; undefined while the build goes on */
  endedAt?: number;
}

export interface AgentTile {
  peerId: string;
  name: string;
  self: boolean;
  role: 'member' | 'scheduler';
  state: 'up' | 'lost';
  lostAt?: number;
  cores: number;
  slots: number;
  slotsUsed: number;
  load: number;
  speed: number;
  toolchains: number;
  rttMs: number | null;
  link: 'self' | 'direct' | 'relayed' | 'none';
  executorUnavailable?: string;
  /** jobs this agent's own builds ran there, and jobs it took from peers (as it advertised) */
  jobs?: number;
  served?: number;
}

export interface SelfCounters {
  jobs: number;
  jobsPerSec: number;
  local: number;
  job: number;
  remote: number;
  fallback: number;
  fallbackByReason: Record<string, number>;
  /** compiles answered from the result cache (node/cache/) */
  cacheHits: number;
  served: number;
  bytesSent: number;
  bytesReceived: number;
  /** input files of remote jobs the peer already had; null before any remote job */
  storeHitRate: number | null;
  toolchainsFetched: number;
  toolchainsServed: number;
  verified: number;
  mismatches: number;
  hedges: number;
}

export interface MeshCounters {
  agents: number;
  lost: number;
  cores: number;
  slots: number;
  slotsUsed: number;
  jobs: number;
  jobsPerSec: number;
  remote: number;
  served: number;
  bytesSent: number;
  bytesReceived: number;
  term: number;
  scheduler?: string;
}

/** One compile, as sent to watchers (short keys: a busy build sends hundreds a second). */
export interface JobView {
  seq: number;
  id: string;
  src: string;
  client: string;
  exec: string;
  start: number;
  ran?: number;
  end?: number;
  route?: string;
  reason?: string;
  verified?: true;
}

export interface MonitorFrame {
  /** a full frame replaces what the watcher has; otherwise `jobs` holds only the changed ones */
  full: boolean;
  at: number;
  self: string;
  agents: AgentTile[];
  counters: { self: SelfCounters; mesh: MeshCounters };
  build?: BuildWindow;
  running: number;
  jobs: JobView[];
}
