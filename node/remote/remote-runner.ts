// Runs a job away from the client's own process: on a peer over the mesh, or in this
// agent's executor when it has a free slot. A refused job, a lost connection, a timeout or a
// dead peer is retried once on another candidate; after that the caller compiles locally.
// A real compile error is a result like any other, never retried. Stragglers are hedged
// with a local compile, and a fraction of remote results is verified against one.
import { performance } from 'node:perf_hooks';
import pLimit from 'p-limit';
import { MeshccError } from '../../protocol/errors.js';
import type { Job, JobResult } from '../../protocol/messages.js';
import { JobFailure, type Executor } from '../executor/executor.js';
import type { Logger } from '../log.js';
import type { MeshNode } from '../mesh/node.js';
import type { Slots } from '../slots.js';
import type { Stats } from '../stats.js';
import type { Store } from '../store.js';
import type { ToolchainRef } from '../toolchains.js';
import type { ScheduledPlacement, SchedulerClient } from '../scheduler/client.js';
import { LOCAL_ONLY, RemoteFailure, runOnPeer } from './job-client.js';
import { SELF, type Placement } from './placement.js';
import { sameResult } from './verify.js';
import { LinkModel } from './link-model.js';
import type { ClientTable } from './offer-table.js';
import { WarmUp } from './warm-up.js';
import { JobSessions } from './job-session.js';
import type { FreshFile } from '../scan/walk-scan.js';
import { FAR_QUALITY } from '../../protocol/compression.js';
import type { JobWatch } from '../monitor/monitor.js';

export interface RemoteRunnerOptions {
  node: () => MeshNode | undefined;
  store: Store;
  executor: Executor;
  placement: Placement;
  localSlots: Slots;
  stats: Stats;
  log: Logger;
  jobTimeoutMs: number;
  /** Fraction (0..1) of remote results also compiled locally and compared. */
  verifyRate: number;
  /** A remote job is a straggler after max(hedgeMinMs, 3 × the usual remote job time). */
  hedgeMinMs: number;
  /** Asks the elected scheduler; without an answer the job is placed here. */
  scheduler?: SchedulerClient;
  /** this agent's peer id (the scheduler may place a job on its own executor) and speed */
  selfId: () => string | undefined;
  selfSpeed: () => number;
  /** Peers no job goes to right now (reached only through a relay, unless allowed). */
  avoid?: () => Iterable<string>;
  /** The peers and their round-trip times (what a job to a peer not yet measured costs). */
  peers?: () => { peerId: string; rttMs?: number }[];
}

/** A job's expected compile time on a speed-1 machine from the bytes it reads: git's 496
 *  units read 7930 bytes per ms of compile here (bench/traces/git.json). A rough estimate
 *  (it correlates with the real time at about 0.5); what matters most is the order of jobs. */
const INPUT_BYTES_PER_MS = 8000;

export interface RunOutcome {
  result: JobResult;
  /** SELF, a peer id, or 'hedge' when the local twin of a straggler won. */
  where: string;
}

const ATTEMPTS = 2;
const MAX_REFUSALS = 4;
const MAX_REFUSALS_WITHOUT_LOCAL = 600;

export class RemoteRunner {
  private readonly active = new Map<string, Set<AbortController>>();
  private readonly verifications = pLimit(1);
  /** What a job costs on top of its compile on each peer, as measured here. */
  readonly links = new LinkModel();
  private readonly warmUp: WarmUp;
  private readonly offers = new Map<string, { hash: string; body: Buffer }>();
  private readonly tables = new Map<string, ClientTable>();
  /** One job session per peer: every job to that peer goes over it. */
  private readonly sessions = new JobSessions({ heard: (peerId) => this.options.node()?.heard(peerId) });
  private typicalMs?: number;
  private samples = 0;

  constructor(private readonly options: RemoteRunnerOptions) {
    this.warmUp = new WarmUp({ node: options.node, store: options.store, log: options.log, quality: FAR_QUALITY });
  }

  /** Ends every job session (the agent stops). */
  stop(): void {
    this.sessions.stop();
  }

  /** A peer left the view (silent, disconnected): its jobs are lost, retry them now. */
  peerLost(peerId: string): void {
    this.warmUp.forget(peerId);
    this.links.forget(peerId);
    this.sessions.drop(peerId, new MeshccError('peer-lost', 'the peer left the mesh'));
    for (const controller of this.active.get(peerId) ?? []) controller.abort(new MeshccError('peer-lost', 'the peer left the mesh'));
  }

  /** Runs the job; throws a JobFailure (with the reason) when it must be compiled locally. */
  /** `fresh`: inputs hashed for the first time for this job, sent with the offer. */
  async run(job: Job, toolchain: ToolchainRef | undefined, watch?: JobWatch, fresh: FreshFile[] = []): Promise<RunOutcome> {
    const { placement, store, stats, log, localSlots } = this.options;
    const hashes = job.inputs.map((f) => f.hash);
    try {
      store.pin(hashes);
    } catch (err) {
      throw new JobFailure('missing-store-object', (err as Error).message);
    }
    const tried = new Set<string>(this.options.avoid?.() ?? []);
    let failures = 0;
    let refusals = 0;
    let last: RemoteFailure | undefined;
    let pauseMs = 0;
    let queuedSince = performance.now();
    try {
      for (;;) {
        // After a busy refusal, wait without holding a place on that peer.
        if (pauseMs) await delay(pauseMs);
        pauseMs = 0;
        const asked = performance.now();
        const scheduled = toolchain ? await this.askScheduler(job, toolchain, tried) : undefined;
        if (scheduled?.where === 'local') {
          scheduled.done();
          throw new JobFailure('scheduler-local', `the scheduler placed it here: ${scheduled.reason}`);
        }
        let where: string | undefined = scheduled ? (scheduled.where === this.options.selfId() ? SELF : scheduled.where) : undefined;
        // Without local slots there is nowhere else to go: wait for a peer's slot.
        if (!where) where = await placement.place(toolchain, tried, localSlots.total === 0 ? this.options.jobTimeoutMs : 0);
        // Nobody else to try: the fallback's reason is what went wrong last.
        if (!where) throw last ? new JobFailure(last.code, last.message) : new JobFailure('no-peer', 'no candidate with a free slot');
        stats.placed(job.id, where, scheduled ? 'scheduler' : 'self', scheduled?.reason ?? 'own-adverts');
        log.debug({ job: job.id, peer: where, waitedMs: Math.round(performance.now() - asked), via: scheduled ? 'scheduler' : 'self', reason: scheduled?.reason ?? 'own-adverts' }, 'job placed');
        const attemptStarted = performance.now();
        watch?.phase('queue', attemptStarted - queuedSince);
        if (where === SELF) watch?.ranHere();
        else watch?.placed(where);
        let fetching = false;
        try {
          const outcome = where === SELF ? await this.runSelf(job) : await this.runRemote(where, job, toolchain!.id, watch, fresh);
          placement.succeeded(where);
          if (where === SELF) watch?.phase('compile', performance.now() - attemptStarted);
          if (outcome.where !== SELF && outcome.where !== 'hedge') return await this.maybeVerify(outcome, job, watch);
          return outcome;
        } catch (err) {
          const failure = err instanceof RemoteFailure ? err : selfFailure(err);
          last = failure;
          if (where !== SELF) stats.peerFailed(where, failure.code);
          if (failure.peerAtFault && placement.failed(where)) log.warn({ peer: where, reason: failure.code }, 'peer failed twice in a row: backing off');
          if (failure.next === 'local') throw new JobFailure(failure.code, failure.message);
          if (failure.code === 'refused-fetching-toolchain') {
            placement.fetchingToolchain(where, toolchain!.id);
            fetching = true;
          }
          if (failure.code.startsWith('refused')) {
            // Adverts lag and several clients share a peer: a busy peer is waited for (briefly
            // when a local slot could take the job, up to the job timeout when none can).
            if (++refusals > (localSlots.total === 0 ? MAX_REFUSALS_WITHOUT_LOCAL : MAX_REFUSALS)) throw new JobFailure(failure.code, failure.message);
            if (failure.code === 'refused-busy') pauseMs = Math.min(1000, 25 * 2 ** Math.min(refusals, 6));
            // Busy: wait for it again; a forgotten dictionary: offer it again in full.
            if (failure.code !== 'refused-busy' && failure.code !== 'refused-unknown-dictionary') tried.add(where);
            continue;
          }
          log.info({ job: job.id, peer: where, reason: failure.code, err: failure.message }, 'remote attempt failed');
          tried.add(where);
          if (++failures >= ATTEMPTS) throw new JobFailure(failure.code, failure.message);
        } finally {
          if (scheduled) {
            scheduled.done(fetching ? undefined : performance.now() - attemptStarted, fetching);
            log.debug({ job: job.id, peer: where }, 'placement done');
          } else placement.release(where);
          queuedSince = performance.now();
        }
      }
    } finally {
      store.unpin(hashes);
    }
  }

  private anyFarPeer(): boolean {
    return (this.options.peers?.() ?? []).some((p) => this.links.isFar(p.rttMs));
  }

  private rttOf(peerId: string): number | undefined {
    return this.options.peers?.().find((p) => p.peerId === peerId)?.rttMs;
  }

  private async askScheduler(job: Job, toolchain: ToolchainRef, tried: ReadonlySet<string>): Promise<ScheduledPlacement | undefined> {
    const { scheduler, selfId, selfSpeed, localSlots } = this.options;
    if (!scheduler) return undefined;
    const self = selfId();
    const skip = [...tried].map((t) => (t === SELF ? self : t)).filter((t): t is string => t !== undefined);
    const inputBytes = job.inputs.reduce((n, f) => n + f.size, 0);
    const linkMs = this.links.far(this.options.peers?.() ?? []);
    return scheduler.place({ toolchain, estimateMs: inputBytes / INPUT_BYTES_PER_MS, localFree: Math.max(0, localSlots.total - localSlots.inUse), localSpeed: selfSpeed(), skip, ...(Object.keys(linkMs).length ? { linkMs } : {}) });
  }

  private async runSelf(job: Job): Promise<RunOutcome> {
    const { executor } = this.options;
    if (!executor.tryReserve()) throw new RemoteFailure('refused-busy', 'this agent is busy', 'elsewhere', false);
    try {
      return { result: await executor.run(job), where: SELF };
    } finally {
      executor.release();
    }
  }

  private async runRemote(peerId: string, job: Job, toolchain: string, watch: JobWatch | undefined, fresh: FreshFile[]): Promise<RunOutcome> {
    const { stats, executor, localSlots } = this.options;
    const node = this.options.node();
    if (!node) throw new RemoteFailure('no-mesh', 'the mesh is not running', 'local', false);
    const far = this.links.isFar(this.rttOf(peerId));
    // Which files are hot matters only for warming far peers: counted once the mesh has one
    // (a kernel job's ~900 inputs cost the event loop ~0.3 ms to count).
    if (far || this.anyFarPeer()) this.warmUp.noteJob(job.inputs);
    if (far) this.warmUp.warm(peerId);
    const remoteAbort = new AbortController();
    const controllers = this.active.get(peerId) ?? new Set();
    controllers.add(remoteAbort);
    this.active.set(peerId, controllers);
    const started = performance.now();
    const remote = runOnPeer({
      node,
      store: this.options.store,
      peerId,
      toolchain,
      job,
      silenceMs: this.options.jobTimeoutMs + 60_000,
      signal: remoteAbort.signal,
      offers: this.offers,
      tables: this.tables,
      sessions: this.sessions,
      fresh,
      quality: far ? FAR_QUALITY : undefined,
    }).then((attempt) => {
      stats.peerJob(peerId, attempt.bytesSent, attempt.bytesReceived, attempt.files, attempt.filesSent, attempt.offerBytes);
      const ms = performance.now() - started;
      this.learn(ms);
      if (attempt.compileMs !== undefined) {
        this.links.observe(peerId, ms, attempt.compileMs);
        watch?.phase('compile', attempt.compileMs);
        watch?.phase('transfer', Math.max(0, ms - attempt.compileMs));
      }
      return { result: attempt.result, where: peerId } satisfies RunOutcome;
    });
    try {
      let settled = false;
      const watched = remote.finally(() => (settled = true));
      watched.catch(() => undefined);
      const straggling = await Promise.race([watched.then(() => false, () => false), delay(this.stragglerMs()).then(() => true)]);
      if (!straggling || executor.sandboxUnavailableReason) return await remote;
      // A straggler: as soon as a local slot is free (polled: client leases come and go), hedge.
      while (!settled && !localSlots.tryAcquire()) await delay(100);
      if (settled) return await remote;
      // Straggler: compile it here as well; the first to finish wins, the other is cancelled.
      stats.hedges.started++;
      this.options.log.info({ job: job.id, peer: peerId, afterMs: Math.round(performance.now() - started) }, 'straggler: compiling it locally as well');
      const localAbort = new AbortController();
      const local = executor
        .runOwn(job, localAbort.signal)
        .then((result) => ({ result, where: 'hedge' }) satisfies RunOutcome)
        .finally(() => localSlots.release());
      const winner = await firstFulfilled(remote, local);
      (winner.where === 'hedge' ? remoteAbort : localAbort).abort(new MeshccError('cancelled', 'the other copy finished first'));
      if (winner.where === 'hedge') stats.hedges.wonLocally++;
      return winner;
    } finally {
      controllers.delete(remoteAbort);
      if (controllers.size === 0) this.active.delete(peerId);
    }
  }

  /** How long a remote job may run before it counts as a straggler. */
  private stragglerMs(): number {
    // Until a few remote jobs have been timed, only a job three times the minimum is a straggler.
    if (this.samples < 5 || this.typicalMs === undefined) return 3 * this.options.hedgeMinMs;
    return Math.max(this.options.hedgeMinMs, 3 * this.typicalMs);
  }

  private learn(ms: number): void {
    this.samples++;
    this.typicalMs = this.typicalMs === undefined ? ms : this.typicalMs * 0.9 + ms * 0.1;
  }

  private async maybeVerify(outcome: RunOutcome, job: Job, watch?: JobWatch): Promise<RunOutcome> {
    const { verifyRate, executor, stats, log, placement } = this.options;
    if (verifyRate <= 0 || Math.random() >= verifyRate || executor.sandboxUnavailableReason) return outcome;
    const local = await this.verifications(() => executor.runOwn(job)).catch((err: Error) => {
      log.debug({ job: job.id, err: err.message }, 'could not verify: the local twin failed');
      return undefined;
    });
    if (!local) return outcome;
    const difference = sameResult(outcome.result, local);
    if (difference === undefined) {
      stats.verify.matched++;
      watch?.verified();
      return outcome;
    }
    stats.verify.mismatches++;
    placement.exclude(outcome.where, difference);
    log.error(
      { peer: outcome.where, job: job.id, argv: job.argv, difference },
      'VERIFICATION FAILED: a peer returned outputs that differ from a local compile; the peer is excluded and the local outputs are used',
    );
    return { result: local, where: SELF };
  }
}

function selfFailure(err: unknown): RemoteFailure {
  const e = err as Error;
  const code = e instanceof MeshccError ? e.code : 'internal-error';
  const next = LOCAL_ONLY.has(code) ? 'local' : 'elsewhere';
  return new RemoteFailure(code, e.message, next, false);
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/** The first promise to fulfil; rejects with the first one's error only if both reject. */
function firstFulfilled<T>(first: Promise<T>, second: Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    let rejected = 0;
    let firstError: unknown;
    const fail = (which: number) => (err: unknown) => {
      if (which === 0) firstError = err;
      if (++rejected === 2) reject(firstError ?? err);
    };
    first.then(resolve, fail(0));
    second.then(resolve, fail(1));
  });
}
