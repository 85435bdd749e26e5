// What the agent did with every compile, for `meshcc stats`: where each ran (locally, in this
// agent's executor, on a peer, or locally after a remote failure) and why, the bytes that
// crossed the mesh, each peer's share, hedges and verifications.
import type { CacheStats } from './cache/result-cache.js';

export type Route = 'local' | 'job' | 'remote' | 'fallback';

interface RouteStats {
  jobs: number;
  ms: number;
  byReason: Record<string, number>;
}

export interface PeerStats {
  jobs: number;
  failures: number;
  failuresByReason: Record<string, number>;
  bytesSent: number;
  bytesReceived: number;
}

export interface ToolchainStats {
  /** toolchains fetched from other agents and installed here */
  fetched: number;
  fetchFailures: number;
  /** compressed bytes received for them, and the time from asking to installed */
  fetchedBytes: number;
  fetchMs: number;
  /** tarballs this agent sent to others */
  served: number;
  servedBytes: number;
  /** jobs run for peers on a toolchain shipped here, and on one of this host's compilers */
  jobsOnShipped: number;
  jobsOnHost: number;
}

export interface PlacementStats {
  viaScheduler: number;
  bySelf: number;
  byReason: Record<string, number>;
  /** the latest placements, newest last */
  recent: { job: string; peer: string; via: 'scheduler' | 'self'; reason: string }[];
}

const RECENT_PLACEMENTS = 20;

export interface StatsSnapshot {
  startedAt: string;
  /** Compiles by where they ran: local (client ran it), job (this agent's executor), remote (a peer), fallback. */
  counts: Record<Route, number>;
  fallbackByReason: Record<string, number>;
  /** Bytes this agent sent to / received from peers for its own jobs. */
  bytesSent: number;
  bytesReceived: number;
  perPeer: Record<string, PeerStats>;
  /** Jobs this agent ran for peers; slotMs: the time its slots spent compiling them (summed over slots). */
  served: { results: number; failed: number; refused: number; bytesReceived: number; bytesSent: number; slotMs: number };
  hedges: { started: number; wonLocally: number };
  verify: { matched: number; mismatches: number };
  peersBackedOff: string[];
  peersExcluded: Record<string, string>;
  routes: Record<Route, RouteStats>;
  jobRoute: { scanMs: number; hashMs: number; executeMs: number; inputFiles: number; inputBytes: number };
  hashing: { filesHashed: number; bytesHashed: number; cacheHits: number };
  /** Input files of remote jobs, and those sent because the peer's store lacked them. */
  inputFiles: { total: number; sent: number; offerBytes: number };
  store: { files: number; bytes: number; maxBytes: number };
  /** The mesh-wide result cache, as this agent used and served it (node/cache/). */
  cache?: CacheStats;
  /** Where this agent's jobs were placed and why: by the elected scheduler or by itself. */
  placements: PlacementStats;
  /** Toolchains shipped to this agent and by it, and the jobs it ran for peers on each kind. */
  toolchains: ToolchainStats & { cached: number; cachedBytes: number };
  slots: { local: number; localInUse: number; executor: number; executorInUse: number; executorUnavailable?: string };
}

export class Stats {
  readonly startedAt = new Date().toISOString();
  readonly routes: Record<Route, RouteStats> = {
    local: { jobs: 0, ms: 0, byReason: {} },
    job: { jobs: 0, ms: 0, byReason: {} },
    remote: { jobs: 0, ms: 0, byReason: {} },
    fallback: { jobs: 0, ms: 0, byReason: {} },
  };
  readonly jobRoute = { scanMs: 0, hashMs: 0, executeMs: 0, inputFiles: 0, inputBytes: 0 };
  readonly perPeer: Record<string, PeerStats> = {};
  readonly served = { results: 0, failed: 0, refused: 0, bytesReceived: 0, bytesSent: 0, slotMs: 0 };
  readonly hedges = { started: 0, wonLocally: 0 };
  readonly verify = { matched: 0, mismatches: 0 };
  readonly toolchains: ToolchainStats = { fetched: 0, fetchFailures: 0, fetchedBytes: 0, fetchMs: 0, served: 0, servedBytes: 0, jobsOnShipped: 0, jobsOnHost: 0 };
  readonly placements: PlacementStats = { viaScheduler: 0, bySelf: 0, byReason: {}, recent: [] };
  /** Input files of this agent's remote jobs, and those of them the peer lacked (sent). */
  readonly inputFiles = { total: 0, sent: 0, offerBytes: 0 };
  bytesSent = 0;
  bytesReceived = 0;

  placed(job: string, peer: string, via: 'scheduler' | 'self', reason: string): void {
    if (via === 'scheduler') this.placements.viaScheduler++;
    else this.placements.bySelf++;
    this.placements.byReason[reason] = (this.placements.byReason[reason] ?? 0) + 1;
    this.placements.recent.push({ job, peer, via, reason });
    if (this.placements.recent.length > RECENT_PLACEMENTS) this.placements.recent.shift();
  }

  toolchainFetched(bytes: number, ms: number): void {
    this.toolchains.fetched++;
    this.toolchains.fetchedBytes += bytes;
    this.toolchains.fetchMs += ms;
  }

  toolchainServed(bytes: number): void {
    this.toolchains.served++;
    this.toolchains.servedBytes += bytes;
  }

  record(route: Route, reason: string, ms: number): void {
    const r = this.routes[route];
    r.jobs++;
    r.ms += ms;
    r.byReason[reason] = (r.byReason[reason] ?? 0) + 1;
  }

  peerJob(peer: string, sent: number, received: number, inputFiles = 0, filesSent = 0, offerBytes = 0): void {
    const p = this.peer(peer);
    this.inputFiles.total += inputFiles;
    this.inputFiles.sent += filesSent;
    this.inputFiles.offerBytes += offerBytes;
    p.jobs++;
    p.bytesSent += sent;
    p.bytesReceived += received;
    this.bytesSent += sent;
    this.bytesReceived += received;
  }

  peerFailed(peer: string, reason: string): void {
    const p = this.peer(peer);
    p.failures++;
    p.failuresByReason[reason] = (p.failuresByReason[reason] ?? 0) + 1;
  }

  slotUsed(ms: number): void {
    this.served.slotMs += Math.round(ms);
  }

  servedOne(outcome: 'result' | 'failed' | 'refused', bytesIn: number, bytesOut: number): void {
    if (outcome === 'result') this.served.results++;
    else if (outcome === 'failed') this.served.failed++;
    else this.served.refused++;
    this.served.bytesReceived += bytesIn;
    this.served.bytesSent += bytesOut;
  }

  counts(): Record<Route, number> {
    return { local: this.routes.local.jobs, job: this.routes.job.jobs, remote: this.routes.remote.jobs, fallback: this.routes.fallback.jobs };
  }

  private peer(id: string): PeerStats {
    return (this.perPeer[id] ??= { jobs: 0, failures: 0, failuresByReason: {}, bytesSent: 0, bytesReceived: 0 });
  }
}
