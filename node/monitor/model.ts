// What the monitor page and `meshcc top` show, as frames: the agents of the mesh (from the
// adverts this agent already holds, plus those lost lately), this agent's and the mesh's
// counters, and the jobs of the current or last build. Built only while someone watches.
import type { AgentStatus } from '../mesh/mesh-service.js';
import type { StatsSnapshot } from '../stats.js';
import type { AgentTile, JobView, MeshCounters, MonitorFrame, SelfCounters } from './frame.js';
import type { JobLog, JobRecord } from './job-log.js';

/** How long a lost agent stays on the page (as a lost tile) unless it comes back. */
const LOST_KEPT_MS = 15 * 60_000;
/** Rates are over (about) this window. */
const RATE_WINDOW_MS = 5_000;
/** Jobs of the build sent to a page that opens (the timeline beyond them is already past). */
const FULL_FRAME_JOBS = 5_000;

export interface ModelSources {
  status: () => AgentStatus[];
  stats: () => StatsSnapshot;
  election: () => { term: number; scheduler?: string };
  jobs: JobLog;
}

export class MonitorModel {
  private readonly lost = new Map<string, AgentTile>();
  private readonly samples: { at: number; self: number; mesh: number }[] = [];

  constructor(
    private readonly sources: ModelSources,
    private readonly now: () => number = Date.now,
  ) {}

  /** A peer left the view (its last status given): its tile stays, marked lost. */
  peerLost(last: AgentStatus): void {
    this.lost.set(last.peerId, { ...tileOf(last), state: 'lost', lostAt: this.now(), slotsUsed: 0 });
  }

  frame(full: boolean): MonitorFrame {
    const at = this.now();
    const { jobs } = this.sources;
    const rows = this.sources.status();
    const agents = rows.map(tileOf);
    // A peer that came back is no longer lost.
    for (const tile of agents) this.lost.delete(tile.peerId);
    for (const [peerId, tile] of this.lost) {
      if (at - (tile.lostAt ?? at) > LOST_KEPT_MS) this.lost.delete(peerId);
      else agents.push(tile);
    }
    const stats = this.sources.stats();
    const self = selfCounters(stats);
    const mesh = this.meshCounters(rows);
    this.sample(at, self.jobs, mesh.jobs);
    self.jobsPerSec = this.rate('self');
    mesh.jobsPerSec = this.rate('mesh');
    const records = full ? (jobs.takeChanged(), jobs.buildRecords().slice(-FULL_FRAME_JOBS)) : jobs.takeChanged();
    return {
      full,
      at,
      self: rows.find((r) => r.self)?.peerId ?? '',
      agents,
      counters: { self, mesh },
      build: jobs.build(),
      running: jobs.runningCount,
      jobs: records.map(jobView),
    };
  }

  private meshCounters(rows: AgentStatus[]): MeshCounters {
    const election = this.sources.election();
    const m: MeshCounters = {
      agents: rows.length,
      lost: this.lost.size,
      cores: 0,
      slots: 0,
      slotsUsed: 0,
      jobs: 0,
      jobsPerSec: 0,
      remote: 0,
      served: 0,
      bytesSent: 0,
      bytesReceived: 0,
      term: election.term,
      ...(election.scheduler ? { scheduler: election.scheduler } : {}),
    };
    for (const row of rows) {
      m.cores += row.cores;
      m.slots += row.slots;
      m.slotsUsed += row.slotsUsed;
      const a = row.activity;
      if (!a) continue;
      m.jobs += a.jobs;
      m.remote += a.remote;
      m.served += a.served;
      m.bytesSent += a.bytesSent;
      m.bytesReceived += a.bytesReceived;
    }
    return m;
  }

  private sample(at: number, self: number, mesh: number): void {
    this.samples.push({ at, self, mesh });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= RATE_WINDOW_MS) this.samples.shift();
  }

  private rate(which: 'self' | 'mesh'): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.at - first.at < 250) return 0;
    // A counter that went down (an agent restarted or left) gives no rate, not a negative one.
    return Math.max(0, ((last[which] - first[which]) * 1000) / (last.at - first.at));
  }
}

function tileOf(row: AgentStatus): AgentTile {
  return {
    peerId: row.peerId,
    name: row.name,
    self: row.self,
    role: row.role,
    state: 'up',
    cores: row.cores,
    slots: row.slots,
    slotsUsed: row.slotsUsed,
    load: Math.round(row.load * 100) / 100,
    speed: Math.round(row.speed * 100) / 100,
    toolchains: row.toolchains.length,
    rttMs: row.rttMs === null ? null : Math.round(row.rttMs * 10) / 10,
    link: row.link,
    ...(row.executorUnavailable ? { executorUnavailable: row.executorUnavailable } : {}),
    ...(row.activity ? { jobs: row.activity.jobs, served: row.activity.served } : {}),
  };
}

function selfCounters(s: StatsSnapshot): SelfCounters {
  const jobs = s.counts.local + s.counts.job + s.counts.remote + s.counts.fallback + (s.cache?.hits ?? 0);
  return {
    jobs,
    jobsPerSec: 0,
    ...s.counts,
    fallbackByReason: s.fallbackByReason,
    cacheHits: s.cache?.hits ?? 0,
    served: s.served.results,
    bytesSent: s.bytesSent + s.served.bytesSent,
    bytesReceived: s.bytesReceived + s.served.bytesReceived,
    storeHitRate: s.inputFiles.total ? (s.inputFiles.total - s.inputFiles.sent) / s.inputFiles.total : null,
    toolchainsFetched: s.toolchains.fetched,
    toolchainsServed: s.toolchains.served,
    verified: s.verify.matched,
    mismatches: s.verify.mismatches,
    hedges: s.hedges.started,
  };
}

function jobView(r: JobRecord): JobView {
  return {
    seq: r.seq,
    id: r.id,
    src: r.source,
    client: r.client,
    exec: r.executor,
    start: r.startedAt,
    ...(r.ranAt !== undefined ? { ran: r.ranAt } : {}),
    ...(r.endedAt !== undefined ? { end: r.endedAt } : {}),
    ...(r.route ? { route: r.route } : {}),
    ...(r.reason ? { reason: r.reason } : {}),
    ...(r.verified ? { verified: true as const } : {}),
  };
}

/** The counters an agent advertises, for everyone's mesh-wide totals. */
export function activityOf(s: Pick<StatsSnapshot, 'counts' | 'served' | 'bytesSent' | 'bytesReceived'>): NonNullable<AgentStatus['activity']> {
  return {
    jobs: s.counts.local + s.counts.job + s.counts.remote + s.counts.fallback,
    remote: s.counts.remote,
    served: s.served.results,
    bytesSent: Math.round(s.bytesSent + s.served.bytesSent),
    bytesReceived: Math.round(s.bytesReceived + s.served.bytesReceived),
  };
}
