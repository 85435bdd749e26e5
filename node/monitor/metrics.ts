// Prometheus metrics at /metrics (prom-client). Counters are read from the agent's stats when
// scraped, so they always equal `meshcc stats --json`; latencies are observed as jobs happen.
import client from 'prom-client';
import type { StatsSnapshot } from '../stats.js';

export type JobPhase = 'scan' | 'queue' | 'transfer' | 'compile';

export interface MetricsSources {
  stats: () => StatsSnapshot;
  mesh: () => { peers: number; slots: number; slotsUsed: number; term: number; scheduler: boolean };
}

const PHASE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export class Metrics {
  readonly registry = new client.Registry();
  private readonly phases: client.Histogram<'phase'>;
  private readonly jobSeconds: client.Histogram<'route'>;
  /** One stats snapshot per scrape. */
  private snapshot?: StatsSnapshot;

  constructor(sources: MetricsSources) {
    const registry = this.registry;
    // The event-loop lag histogram samples with a native timer: prom-client's 10 ms default woke
    // an idle agent 100 times a second (about 1 % of a core, alone). Once a second is plenty
    // for a scrape every 15 s or more.
    client.collectDefaultMetrics({ register: registry, prefix: 'meshcc_process_', eventLoopMonitoringPrecision: 1000 });
    const stats = () => (this.snapshot ??= sources.stats());
    const counter = <L extends string>(name: string, help: string, labelNames: L[], fill: (set: (labels: Partial<Record<L, string>>, value: number) => void) => void) =>
      new client.Counter({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          fill((labels, value) => this.inc(labels, value));
        },
      });
    const gauge = <L extends string>(name: string, help: string, labelNames: L[], fill: (set: (labels: Partial<Record<L, string>>, value: number) => void) => void) =>
      new client.Gauge({
        name,
        help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset();
          fill((labels, value) => this.set(labels, value));
        },
      });

    counter('meshcc_jobs_total', "this agent's compiles by where they ran (route) and why (reason)", ['route', 'reason'], (set) => {
      for (const [route, r] of Object.entries(stats().routes)) for (const [reason, n] of Object.entries(r.byReason)) set({ route, reason }, n);
    });
    counter('meshcc_jobs_served_total', 'jobs this agent took from peers, by outcome', ['outcome'], (set) => {
      const s = stats().served;
      set({ outcome: 'result' }, s.results);
      set({ outcome: 'failed' }, s.failed);
      set({ outcome: 'refused' }, s.refused);
    });
    counter('meshcc_bytes_total', 'bytes over the mesh: for our own jobs (role=client) and for jobs run for peers (role=server)', ['direction', 'role'], (set) => {
      const s = stats();
      set({ direction: 'sent', role: 'client' }, s.bytesSent);
      set({ direction: 'received', role: 'client' }, s.bytesReceived);
      set({ direction: 'sent', role: 'server' }, s.served.bytesSent);
      set({ direction: 'received', role: 'server' }, s.served.bytesReceived);
    });
    counter('meshcc_remote_input_files_total', 'input files of remote jobs: found in the peer store (hit) or sent', ['outcome'], (set) => {
      const s = stats().inputFiles;
      set({ outcome: 'hit' }, s.total - s.sent);
      set({ outcome: 'sent' }, s.sent);
    });
    counter('meshcc_cache_lookups_total', 'result cache lookups of this agent: hits (direct mode, from the mesh, or its own store) and misses', ['outcome'], (set) => {
      const c = stats().cache;
      if (!c) return;
      set({ outcome: 'hit-direct' }, c.directHits);
      set({ outcome: 'hit-mesh' }, c.meshHits);
      set({ outcome: 'hit-own' }, c.hits - c.directHits - c.meshHits);
      set({ outcome: 'miss' }, c.misses);
      set({ outcome: 'uncacheable' }, c.uncacheable);
    });
    counter('meshcc_cache_bytes_total', 'result cache bytes: handed to clients from hits, published, served to members, taken from members', ['kind'], (set) => {
      const c = stats().cache;
      if (!c) return;
      set({ kind: 'hit' }, c.hitBytes);
      set({ kind: 'published' }, c.publishedBytes);
      set({ kind: 'served' }, c.servedBytes);
      set({ kind: 'stored' }, c.storedBytes);
    });
    gauge('meshcc_cache_entries_bytes', 'bytes of result cache entries held by this agent', [], (set) => set({}, stats().cache?.bytes ?? 0));
    gauge('meshcc_store_bytes', 'bytes in the content-addressed store', [], (set) => set({}, stats().store.bytes));
    gauge('meshcc_store_files', 'files in the content-addressed store', [], (set) => set({}, stats().store.files));
    counter('meshcc_hash_cache_hits_total', 'input files whose hash was known from an earlier job', [], (set) => set({}, stats().hashing.cacheHits));
    gauge('meshcc_toolchain_cache_bytes', 'bytes of toolchains in the cache', [], (set) => set({}, stats().toolchains.cachedBytes));
    gauge('meshcc_toolchain_cache_entries', 'toolchains in the cache', [], (set) => set({}, stats().toolchains.cached));
    counter('meshcc_toolchain_jobs_total', 'jobs run for peers on a toolchain already here (a cache hit), shipped or the host own', ['kind'], (set) => {
      set({ kind: 'shipped' }, stats().toolchains.jobsOnShipped);
      set({ kind: 'host' }, stats().toolchains.jobsOnHost);
    });
    counter('meshcc_toolchain_fetches_total', 'toolchains fetched from peers (cache misses), by outcome', ['outcome'], (set) => {
      set({ outcome: 'ok' }, stats().toolchains.fetched);
      set({ outcome: 'failed' }, stats().toolchains.fetchFailures);
    });
    counter('meshcc_toolchains_served_total', 'toolchain tarballs sent to peers', [], (set) => set({}, stats().toolchains.served));
    gauge('meshcc_slots', "this agent's slots: local (compiles its clients run) and executor (jobs it runs)", ['kind', 'state'], (set) => {
      const s = stats().slots;
      set({ kind: 'local', state: 'total' }, s.local);
      set({ kind: 'local', state: 'used' }, s.localInUse);
      set({ kind: 'executor', state: 'total' }, s.executor);
      set({ kind: 'executor', state: 'used' }, s.executorInUse);
    });
    gauge('meshcc_peers', 'other agents in this agent view of the mesh', [], (set) => set({}, sources.mesh().peers));
    gauge('meshcc_mesh_slots', 'executor slots of the whole mesh as adverts tell them', ['state'], (set) => {
      const m = sources.mesh();
      set({ state: 'total' }, m.slots);
      set({ state: 'used' }, m.slotsUsed);
    });
    gauge('meshcc_election_term', 'the scheduler election term this agent follows', [], (set) => set({}, sources.mesh().term));
    gauge('meshcc_scheduler', '1 when this agent is the elected scheduler', [], (set) => set({}, sources.mesh().scheduler ? 1 : 0));

    this.phases = new client.Histogram({
      name: 'meshcc_job_phase_seconds',
      help: 'time of each phase of a job: scan (inputs found and hashed), queue (waiting for a place), transfer (to and from the peer), compile',
      labelNames: ['phase'],
      buckets: PHASE_BUCKETS,
      registers: [registry],
    });
    this.jobSeconds = new client.Histogram({
      name: 'meshcc_job_seconds',
      help: "a compile's whole time in the agent, by route",
      labelNames: ['route'],
      buckets: PHASE_BUCKETS,
      registers: [registry],
    });
  }

  phase(phase: JobPhase, ms: number): void {
    this.phases.observe({ phase }, ms / 1000);
  }

  job(route: string, ms: number): void {
    this.jobSeconds.observe({ route }, ms / 1000);
  }

  text(): Promise<string> {
    this.snapshot = undefined;
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
