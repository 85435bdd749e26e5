// The composition root: builds the agent's parts, starts them in order, stops them in reverse.
// Reading down from here: client socket → compile service → (analysis, slots, scanner,
// hasher, store, placement → remote runner → executor or peers); the mesh service and the
// job server answer the other agents.
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { MeshccError } from '../protocol/errors.js';
import { ClientSocketServer } from './client-socket.js';
import { CompileService } from './compile-service.js';
import type { AgentConfig } from './config.js';
import { Executor } from './executor/executor.js';
import { acquireInstanceLock, type InstanceLock } from './instance-lock.js';
import type { Logger } from './log.js';
import { lostPeerStatus, MeshService } from './mesh/mesh-service.js';
import { peerAdvert } from './mesh/view.js';
import { MembershipAdmin } from './membership-admin.js';
import { JobServer } from './remote/job-server.js';
import { Placement } from './remote/placement.js';
import { RemoteRunner } from './remote/remote-runner.js';
import { InputHasher } from './scan/hasher.js';
import { InputScanner } from './scan/scanner.js';
import { WalkThread } from './scan/walk-thread.js';
import { Slots } from './slots.js';
import { LeanSpawner } from './spawner/lean-spawn.js';
import { measureSpeed } from './speed.js';
import { Stats, type StatsSnapshot } from './stats.js';
import { Store } from './store.js';
import { HostToolchains } from './toolchains.js';
import { ToolchainCache } from './toolchain-cache.js';
import { ToolchainSupply } from './toolchain-supply.js';
import { ToolchainAdmin } from './toolchain-admin.js';
import { SchedulerClient } from './scheduler/client.js';
import { SchedulerService } from './scheduler/service.js';
import { ToolchainTransfer } from './remote/toolchain-transfer.js';
import { Metrics } from './monitor/metrics.js';
import { JobMonitor } from './monitor/monitor.js';
import { activityOf, MonitorModel } from './monitor/model.js';
import { MonitorServer, monitorToken } from './monitor/http-server.js';
import { loadOrCreateMeshKey, setMeshKey } from './mesh/keys.js';
import { PACKAGE_ROOT } from './paths.js';
import { ResultCache } from './cache/result-cache.js';

export class Agent {
  readonly stats = new Stats();
  readonly store: Store;
  readonly executor: Executor;
  readonly localSlots: Slots;
  private readonly spawner = new LeanSpawner();
  /** The job route's include walks and hashing, off the event loop. */
  private readonly walkThread: WalkThread;
  private readonly hasher: InputHasher;
  private readonly socket: ClientSocketServer;
  private readonly toolchains: HostToolchains;
  private readonly toolchainSupply: ToolchainSupply;
  private readonly toolchainAdmin: ToolchainAdmin;
  private readonly placement: Placement;
  private readonly remote: RemoteRunner;
  private mesh?: MeshService;
  private jobServer?: JobServer;
  private toolchainTransfer?: ToolchainTransfer;
  private schedulerService?: SchedulerService;
  private readonly schedulerClient: SchedulerClient;
  private speed = 1;
  private speedMeasured?: Promise<void>;
  private lock?: InstanceLock;
  private readonly metrics: Metrics;
  private readonly jobMonitor: JobMonitor;
  private readonly monitorModel: MonitorModel;
  private monitorServer?: MonitorServer;
  private readonly membershipAdmin: MembershipAdmin;
  readonly cache: ResultCache;

  constructor(
    readonly config: AgentConfig,
    private readonly log: Logger,
  ) {
    this.store = new Store(path.join(config.home, 'store'), config.storeBytes, log);
    this.hasher = new InputHasher(this.store);
    this.walkThread = new WalkThread(this.store);
    this.executor = new Executor({
      // Jobs niced below the agents (icecream's and distcc's default): an agent that wakes to
      // hand a slot its next job gets a core at once, not after the compiles' time slices.
      spawner: config.jobNice > 0 ? new LeanSpawner(config.jobNice) : this.spawner,
      store: this.store,
      workDir: config.jobsDir,
      slots: config.slots,
      timeoutMs: config.jobTimeoutMs,
      cpuSeconds: config.jobCpuSeconds,
      memoryBytes: config.jobMemoryBytes,
      outputFileBytes: config.jobOutputFileBytes,
      log,
      onRunningChanged: () => {
        this.mesh?.changed();
        this.schedulerService?.selfChanged();
      },
      onSlotTime: (ms) => this.stats.slotUsed(ms),
    });
    this.localSlots = new Slots(config.localSlots);
    this.metrics = new Metrics({
      stats: () => this.snapshot(),
      mesh: () => {
        const rows = this.mesh?.status() ?? [];
        const election = this.mesh?.scheduler() ?? { term: 0 };
        return {
          peers: Math.max(0, rows.length - 1),
          slots: rows.reduce((n, r) => n + r.slots, 0),
          slotsUsed: rows.reduce((n, r) => n + r.slotsUsed, 0),
          term: election.term,
          scheduler: election.scheduler !== undefined && election.scheduler === this.mesh?.peerId,
        };
      },
    });
    this.jobMonitor = new JobMonitor(this.metrics, () => this.mesh?.peerId);
    this.monitorModel = new MonitorModel({
      status: () => this.mesh?.status() ?? [],
      stats: () => this.snapshot(),
      election: () => this.mesh?.scheduler() ?? { term: 0 },
      jobs: this.jobMonitor.log,
    });
    this.toolchains = new HostToolchains(log, config.toolchainKnowledgeDir, () => this.mesh?.changed(), config.ephemeral === true);
    this.toolchainSupply = new ToolchainSupply(
      this.toolchains,
      new ToolchainCache({ dir: path.join(config.home, 'toolchains'), maxBytes: config.toolchainCacheBytes, log, onChange: () => this.mesh?.changed() }),
    );
    this.toolchainAdmin = new ToolchainAdmin(this.toolchains, this.toolchainSupply.cache);
    this.placement = new Placement({
      peers: () => {
        const peers = this.mesh?.peers() ?? [];
        const unusable = this.mesh?.unusableForJobs();
        return unusable?.size ? peers.filter((p) => !unusable.has(p.peerId)) : peers;
      },
      selfSlots: () => this.executor.slots,
      selfFreeSlots: () => this.executor.freeSlots,
      backoffMs: config.backoffMs,
    });
    this.schedulerClient = new SchedulerClient({
      node: () => this.mesh?.meshNode,
      self: () => this.mesh?.peerId,
      scheduler: () => this.mesh?.scheduler().scheduler,
      service: () => this.schedulerService,
      log,
    });
    this.remote = new RemoteRunner({
      node: () => this.mesh?.meshNode,
      store: this.store,
      executor: this.executor,
      placement: this.placement,
      localSlots: this.localSlots,
      stats: this.stats,
      log,
      jobTimeoutMs: config.jobTimeoutMs,
      verifyRate: config.verifyRate,
      hedgeMinMs: config.hedgeMinMs,
      scheduler: this.schedulerClient,
      selfId: () => this.mesh?.peerId,
      selfSpeed: () => this.ownSpeed(),
      avoid: () => this.mesh?.unusableForJobs() ?? [],
      peers: () => this.mesh?.peers() ?? [],
    });
    this.cache = new ResultCache({
      config: config.cache,
      dir: path.join(config.home, 'cache'),
      keepsMeshHits: !config.ephemeral,
      store: this.store,
      executor: this.executor,
      spawner: this.spawner,
      log,
      verifyRate: config.verifyRate,
      selfId: () => this.mesh?.peerId,
      members: () => (this.mesh?.peers() ?? []).map((p) => p.peerId).filter((p) => !this.mesh?.membership?.isRevoked(p)),
      admitted: (peer) => peer === this.mesh?.peerId || !(this.mesh?.membership?.isRevoked(peer) ?? true),
      exclude: (peer, why) => this.placement.exclude(peer, why),
    });
    const compile = new CompileService({
      localSlots: this.localSlots,
      placement: this.placement,
      remote: this.remote,
      toolchainOf: (compiler) => this.toolchains.refForJob(compiler),
      scanner: new InputScanner(this.spawner, true, this.walkThread),
      writeOutputs: (outputs, umask) => this.walkThread.writeOutputs(outputs, umask),
      hasher: this.hasher,
      stats: this.stats,
      log,
      monitor: this.jobMonitor,
      cache: this.cache,
    });
    this.socket = new ClientSocketServer({
      socketPath: config.socketPath,
      compile,
      statsSnapshot: () => this.snapshot(),
      meshStatus: () => this.mesh?.statusFresh() ?? [],
      toolchains: (request) => this.toolchainAdmin.run(request),
      monitor: (listen) => this.openMonitor(listen),
      members: (request) => this.membershipAdmin.run(request),
      cache: async () => this.cache.clear(),
      log,
    });
    this.membershipAdmin = new MembershipAdmin({
      home: config.home,
      mesh: () => this.mesh,
      restartMesh: async (change) => {
        await this.stopMesh();
        try {
          await change();
        } finally {
          await this.startMesh();
        }
      },
      log,
    });
  }

  /** This agent's speed score; an agent without slots measures it on first need (see start). */
  private ownSpeed(): number {
    if (this.config.speed === undefined && this.executor.slots === 0)
      this.speedMeasured ??= measureSpeed().then((speed) => {
        if (speed > 0) this.speed = speed;
      });
    return this.speed;
  }

  async start(): Promise<void> {
    await fs.mkdir(this.config.home, { recursive: true, mode: 0o700 });
    this.lock = await acquireInstanceLock(this.config.home, this.config.socketPath);
    try {
      if (this.config.meshKeyHex) await setMeshKey(this.config.home, this.config.meshKeyHex);
      await this.store.start();
      await this.cache.start();
      await this.executor.start();
      // An executor's speed is in its card from the start; an agent without slots (a client, a
      // `meshcc run`) needs it only to weigh its own local slots against a peer's, when it places
      // its first job: measured then, in the background (three compiles of CPU a CI build of
      // cache hits never needs).
      if (this.config.speed !== undefined) this.speed = this.config.speed;
      else if (this.executor.slots > 0) this.speed = await measureSpeed();
      await this.socket.start();
      await this.startMesh();
      await this.startMonitor();
      // A lasting agent identifies every compiler on PATH at once (once per machine: the ids are
      // kept by file stats in MESHCC_CACHE_DIR). One that lives for one command identifies only
      // the compilers it uses, when they first come: a CI build's fresh client hashed 14
      // compilers for the one its build used.
      if (!this.config.ephemeral) void this.toolchains.discover().catch((err: Error) => this.log.warn({ err: err.message }, 'could not identify the host toolchains'));
    } catch (err) {
      await this.socket.stop().catch(() => undefined);
      await this.lock.release();
      if (err instanceof MeshccError) throw err;
      throw new MeshccError('start-failed', `the agent could not start: ${(err as Error).message}`);
    }
    this.log.info(
      {
        home: this.config.home,
        socket: this.config.socketPath,
        slots: this.executor.slots,
        localSlots: this.config.localSlots,
        executor: this.executor.unavailableReason ?? 'bubblewrap',
        peerId: this.mesh?.peerId,
        monitor: this.monitorServer?.urls()[0]?.url,
      },
      'agent started',
    );
  }

  async stop(): Promise<void> {
    await this.monitorServer?.stop();
    await this.stopMesh();
    await this.socket.stop();
    await this.executor.stop();
    await this.toolchainSupply.cache.flush();
    this.spawner.stop();
    this.remote.stop();
    await this.walkThread.stop();
    await this.cache.stop();
    await this.lock?.release();
    this.log.info('agent stopped');
  }

  /** The agent's place in the mesh and the protocols that run over it (stopped and started
   *  again when the agent joins another mesh). */
  private async startMesh(): Promise<void> {
    this.mesh = new MeshService({
      home: this.config.home,
      listen: this.config.listen,
      staticPeers: this.config.peers,
      peersDns: this.config.peersDns,
      mdns: this.config.mdns,
      relay: this.config.relay,
      relayedJobs: this.config.relayedJobs,
      portMapping: this.config.portMapping,
      candidate: this.config.scheduler,
      speed: this.speed,
      name: this.config.name,
      onScheduler: () => this.schedulerService?.electionChanged(),
      activity: () => activityOf({ ...this.stats, counts: this.stats.counts() }),
      log: this.log,
      capacity: () => ({
        slots: this.executor.slots,
        slotsUsed: this.executor.slotsUsed,
        toolchains: this.toolchainSupply.ids(),
        unavailable: this.executor.unavailableReason,
      }),
    });
    await this.mesh.start();
    const mesh = this.mesh;
    this.schedulerService = new SchedulerService({
      node: mesh.meshNode!,
      log: this.log,
      selfAdvert: () => peerAdvert(mesh.card(), mesh.load()),
      peers: () => mesh.peers(),
      isScheduler: () => mesh.scheduler().scheduler === mesh.peerId,
      scheduler: () => mesh.scheduler(),
    });
    await this.schedulerService.start();
    this.schedulerService.electionChanged();
    const view = mesh.peerView;
    view.on('removed', (peer, _why, last) => {
      this.monitorModel.peerLost(lostPeerStatus(last));
      this.remote.peerLost(peer);
      this.schedulerService?.peerRemoved(peer);
    });
    for (const event of ['added', 'updated'] as const) {
      view.on(event, (entry) => {
        this.placement.peersChanged();
        this.schedulerService?.peerUpdated(entry);
      });
    }
    const transfer = new ToolchainTransfer({
      node: this.mesh.meshNode!,
      supply: this.toolchainSupply,
      stats: this.stats,
      log: this.log,
      onInstalled: () => this.mesh?.changed(),
    });
    this.toolchainTransfer = transfer;
    await transfer.start();
    this.jobServer = new JobServer({
      node: this.mesh.meshNode!,
      store: this.store,
      executor: this.executor,
      toolchains: this.toolchainSupply,
      obtainToolchain: (id, sources) => void transfer.obtain(id, sources),
      holdersOf: (id) => (this.mesh?.peers() ?? []).filter((p) => p.advert.toolchains.includes(id)).map((p) => p.peerId),
      onToolchainUsed: (shipped) => (shipped ? this.stats.toolchains.jobsOnShipped++ : this.stats.toolchains.jobsOnHost++),
      log: this.log,
      onServed: (outcome, bytesIn, bytesOut) => this.stats.servedOne(outcome, bytesIn, bytesOut),
      watchServed: (id, source, client) => this.jobMonitor.served(id, source, client),
    });
    await this.jobServer.start();
    await this.cache.startMesh(this.mesh.meshNode!);
  }

  private async stopMesh(): Promise<void> {
    await this.cache.stopMesh();
    await this.jobServer?.stop();
    await this.toolchainTransfer?.stop();
    this.schedulerClient.stop();
    await this.schedulerService?.stop();
    await this.mesh?.stop();
    this.jobServer = undefined;
    this.toolchainTransfer = undefined;
    this.schedulerService = undefined;
    this.mesh = undefined;
  }

  private async startMonitor(): Promise<void> {
    const http = this.config.http;
    if (!http) return;
    this.monitorServer = new MonitorServer({
      model: this.monitorModel,
      metrics: this.metrics,
      health: () => this.health(),
      meshKey: await loadOrCreateMeshKey(this.config.home),
      pageDir: path.join(PACKAGE_ROOT, 'node', 'monitor', 'page'),
      scriptDir: path.join(PACKAGE_ROOT, 'dist', 'monitor', 'page'),
      log: this.log,
    });
    try {
      await this.monitorServer.listen(http.host, http.port);
    } catch (err) {
      if (http.fixed || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
        throw new MeshccError('bad-config', `cannot serve the monitor on ${http.host}:${http.port}: ${(err as Error).message}`);
      }
      // Another agent of this machine has the default port.
      await this.monitorServer.listen(http.host, 0);
    }
  }

  /** Ready when this agent can run jobs itself or knows a peer that can take them. */
  health(): { ready: boolean; reason: string } {
    if (this.executor.slots > 0 && !this.executor.unavailableReason) return { ready: true, reason: `executes jobs (${this.executor.slots} slots)` };
    const peers = (this.mesh?.peers() ?? []).filter((p) => p.advert.slots > 0).length;
    if (peers > 0) return { ready: true, reason: `forwards jobs to ${peers} peer(s)` };
    return { ready: false, reason: this.executor.unavailableReason ?? 'no executor slots and no peer with slots' };
  }

  /** The monitor's addresses, after opening one more on `listen` (host:port) if asked. */
  private async openMonitor(listen?: { host: string; port: number }): Promise<{ urls: { url: string; open: boolean }[]; token: string }> {
    const server = this.monitorServer;
    if (!server) throw new MeshccError('monitor-off', 'this agent serves no monitor (MESHCC_HTTP=off)');
    if (listen) {
      try {
        await server.listen(listen.host, listen.port);
      } catch (err) {
        throw new MeshccError('bad-address', `cannot listen on ${listen.host}:${listen.port}: ${(err as Error).message}`);
      }
    }
    return { urls: server.urls(), token: monitorToken(await loadOrCreateMeshKey(this.config.home)) };
  }

  /** One row per agent of the mesh, this one included (`meshcc status`). */
  meshStatus() {
    return this.mesh?.status() ?? [];
  }

  /** Peers no job goes to now (reached only through a relay, unless that is allowed). */
  unusableForJobs(): ReadonlySet<string> {
    return this.mesh?.unusableForJobs() ?? new Set();
  }

  snapshot(): StatsSnapshot {
    const troubled = this.placement.troubled();
    return {
      startedAt: this.stats.startedAt,
      counts: this.stats.counts(),
      fallbackByReason: this.stats.routes.fallback.byReason,
      bytesSent: this.stats.bytesSent,
      bytesReceived: this.stats.bytesReceived,
      perPeer: this.stats.perPeer,
      served: this.stats.served,
      hedges: this.stats.hedges,
      verify: this.stats.verify,
      peersBackedOff: troubled.backedOff,
      peersExcluded: troubled.excluded,
      routes: this.stats.routes,
      jobRoute: this.stats.jobRoute,
      hashing: this.hasher.stats,
      inputFiles: this.stats.inputFiles,
      store: this.store.stats,
      cache: this.cache.stats(),
      placements: this.stats.placements,
      toolchains: { ...this.stats.toolchains, cached: this.toolchainSupply.cache.list().length, cachedBytes: this.toolchainSupply.cache.totalBytes },
      slots: {
        local: this.localSlots.total,
        localInUse: this.localSlots.inUse,
        executor: this.executor.slots,
        executorInUse: this.executor.slotsUsed,
        executorUnavailable: this.executor.unavailableReason,
      },
    };
  }
}
