// The scheduler's placement, without sockets or timers: the elected agent's service feeds it
// the mesh's adverts and the clients' requests and reports; bench/placement-sim drives the
// same code with simulated peers and a clock.
//
// - Each request is answered with the candidate that would finish the job first (earliest
//   expected finish: the work already assigned there, the job's estimated size over the
//   peer's speed as measured by the jobs it ran and slowed by load that is not ours, its
//   round-trip time), among the peers that
//   hold the job's toolchain. Only when no holder can take it is a peer of the same machine
//   type tried, which then fetches the toolchain (not asked again for a minute).
// - "local" when the client has a free slot of its own and would finish the job sooner.
// - Requests wait here (a turn of the event loop, or until a slot frees); a free slot goes to
//   the client with the fewest jobs placed (fairness between builds), and within it to the
//   largest job (longest first keeps the end of a build short).
// - Peers stay authoritative: capacity here is the advert's slots, and a peer refusing a job
//   just sends the client back with that peer skipped.

/** Whether a candidate beats the best so far: a holder always beats a peer that would have
 *  to fetch the toolchain first; among equals, the earlier finish. */
function beats(holder: boolean, finish: number, best: { finish: number; holder: boolean } | undefined): boolean {
  return !best || (holder && !best.holder) || (holder === best.holder && finish < best.finish);
}

export interface PeerInfo {
  id: string;
  slots: number;
  slotsUsed: number;
  /** relative compile speed, as advertised (higher is faster) */
  speed: number;
  load: number;
  cores: number;
  arch: string;
  os: string;
  toolchains: readonly string[];
  rttMs?: number;
}

export interface ToolchainRef {
  id: string;
  arch: string;
  os: string;
}

export interface PlacementRequest {
  /** the client agent's peer id */
  client: string;
  toolchain: ToolchainRef;
  /** the job's expected compile time on a speed-1 machine (ms), estimated from its inputs */
  estimateMs: number;
  /** free local slots of the client, and its speed */
  localFree: number;
  localSpeed: number;
  /** peers the client tried already for this job */
  skip?: readonly string[];
  /** what a job costs on top of its compile on far peers, as the client measured (ms) */
  linkMs?: Readonly<Record<string, number>>;
}

export type Decision =
  /** expectedMs: when it should be done (queue and compile); workMs: its compile alone there */
  | { where: 'peer'; peer: string; reason: string; expectedMs: number; workMs: number }
  | { where: 'local'; reason: string }
  /** nowhere: no peer at all could ever take it (the client compiles locally) */
  | { where: 'none'; reason: string };

export interface SchedulerCoreOptions {
  now: () => number;
  /** how long a peer that lacks a toolchain is left to fetch it */
  fetchGraceMs?: number;
}

interface PeerState {
  info: PeerInfo;
  holds: ReadonlySet<string>;
  /** jobs placed here and not reported done, by client */
  assigned: Map<string, number>;
  assignedTotal: number;
  /** Jobs the peer runs that were not placed here (clients placing by themselves during an
   *  election), as its last report showed them beyond ours. */
  foreign: number;
  /** estimated work (ms at this peer's speed) of the jobs placed here */
  outstandingMs: number;
  /** measured time / expected time, smoothed (1 = as fast as advertised) */
  slowdown: number;
}

interface Waiting {
  request: PlacementRequest;
  answer: (decision: Decision) => void;
  since: number;
}

/** A placement, to be reported done with its handle. */
export interface Placed {
  peer: string;
  client: string;
  expectedMs: number;
  workMs: number;
}

const SMOOTHING = 0.2;

export class SchedulerCore {
  private readonly peers = new Map<string, PeerState>();
  private readonly waiting: Waiting[] = [];
  private readonly placedPerClient = new Map<string, number>();
  private readonly fetching = new Map<string, number>();
  private readonly fetchGraceMs: number;
  private dispatching = false;
  private slotsTotal = 0;
  private dispatchAgain = false;

  constructor(private readonly options: SchedulerCoreOptions) {
    this.fetchGraceMs = options.fetchGraceMs ?? 60_000;
  }

  get waitingCount(): number {
    return this.waiting.length;
  }

  /** A peer's advert arrived (new or updated). */
  upsertPeer(info: PeerInfo): void {
    const known = this.peers.get(info.id);
    if (known) {
      this.slotsTotal -= known.info.slots;
      known.info = info;
      known.foreign = Math.max(0, info.slotsUsed - known.assignedTotal);
      if (known.holds.size !== info.toolchains.length || info.toolchains.some((t) => !known.holds.has(t))) known.holds = new Set(info.toolchains);
    } else {
      this.peers.set(info.id, { info, holds: new Set(info.toolchains), assigned: new Map(), assignedTotal: 0, foreign: info.slotsUsed, outstandingMs: 0, slowdown: 1 });
    }
    this.slotsTotal += info.slots;
    this.dispatch();
  }

  /** A peer left: what was placed there is the clients' to retry. */
  removePeer(id: string): void {
    const state = this.peers.get(id);
    if (!state) return;
    for (const [client, n] of state.assigned) this.placedPerClient.set(client, Math.max(0, (this.placedPerClient.get(client) ?? 0) - n));
    this.peers.delete(id);
    this.slotsTotal -= state.info.slots;
    this.dispatch();
  }

  /** A client went away: its placements no longer hold slots. */
  removeClient(client: string): void {
    for (const state of this.peers.values()) {
      const n = state.assigned.get(client);
      if (!n) continue;
      state.assigned.delete(client);
      state.assignedTotal -= n;
      if (state.assignedTotal === 0) state.outstandingMs = 0;
    }
    this.placedPerClient.delete(client);
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      if (this.waiting[i]!.request.client === client) this.waiting.splice(i, 1)[0]!.answer({ where: 'none', reason: 'client-gone' });
    }
    this.dispatch();
  }

  /** The peer refused a job because it is fetching the toolchain first. */
  peerFetching(peer: string, toolchain: string): void {
    this.fetching.set(`${peer} ${toolchain}`, this.options.now() + this.fetchGraceMs);
  }

  /**
   * Takes a request; `answer` is called exactly once, by flush() or when a slot frees. Requests
   * are not answered one by one as they arrive: a build sends a burst of them, and handing
   * the slots out largest job first (the longest ones on the fastest peers) shortens the end
   * of the build (bench/placement-sim: 1.00× the lower bound instead of 1.08× for 20 peers).
   */
  request(request: PlacementRequest, answer: (decision: Decision) => void): void {
    this.waiting.push({ request, answer, since: this.options.now() });
  }

  /** Gives up on waiting requests older than maxWaitMs (answered 'none'). */
  expireWaiting(maxWaitMs: number): void {
    const now = this.options.now();
    for (let i = this.waiting.length - 1; i >= 0; i--) {
      if (now - this.waiting[i]!.since > maxWaitMs) this.waiting.splice(i, 1)[0]!.answer({ where: 'none', reason: 'no-slot-in-time' });
    }
  }

  /** A placed job ended (or failed): its slot is free; `actualMs` teaches the peer's speed. */
  done(placed: Placed, actualMs?: number): void {
    const state = this.peers.get(placed.peer);
    if (state) {
      const n = state.assigned.get(placed.client) ?? 0;
      if (n > 0) {
        if (n === 1) state.assigned.delete(placed.client);
        else state.assigned.set(placed.client, n - 1);
        state.assignedTotal--;
        state.outstandingMs = state.assignedTotal === 0 ? 0 : Math.max(0, state.outstandingMs - placed.workMs);
      }
      if (actualMs !== undefined && placed.expectedMs > 0) {
        // What the peer took against what we expected of it (its speed, its queue).
        const ratio = Math.min(20, Math.max(0.05, actualMs / placed.expectedMs));
        state.slowdown = Math.min(50, Math.max(0.02, state.slowdown * (1 - SMOOTHING + ratio * SMOOTHING)));
      }
    }
    const mine = this.placedPerClient.get(placed.client) ?? 0;
    if (mine > 1) this.placedPerClient.set(placed.client, mine - 1);
    else this.placedPerClient.delete(placed.client);
    this.dispatch();
  }

  /** Hands out waiting requests now (the service calls it shortly after a burst of requests). */
  flush(): void {
    this.dispatch();
  }

  /** Free capacity summary, for stats and status. */
  view(): { peers: number; slots: number; assigned: number; waiting: number } {
    let slots = 0;
    let assigned = 0;
    for (const s of this.peers.values()) {
      slots += s.info.slots;
      assigned += s.assignedTotal;
    }
    return { peers: this.peers.size, slots, assigned, waiting: this.waiting.length };
  }

  /**
   * Jobs a peer is given: its slots, plus a short queue of its own (a quarter of its slots,
   * at least one) used only when no peer has a free slot. Without that queue each slot sat
   * idle between two jobs for the whole hand-over (result to the client, done to here, the
   * next offer, its missing files, its job root): git's mesh build left a 2-core peer 11-14 %
   * idle. Not the jobsPerSlot the peer admits, and not while slots are free anywhere:
   * measured in bench/placement-sim, queues at peers that are handed out before every slot
   * is taken (1.25× or 2× the slots) made the makespan 16-25 % longer than giving each freed
   * slot the largest waiting job.
   */
  private capacity(state: PeerState): number {
    return state.info.slots + Math.ceil(state.info.slots / 4);
  }

  /**
   * Jobs on the peer as far as we know: ours, and what its last report showed beyond ours
   * (other clients placing by themselves during an election). Not the larger of ours and its
   * report: a report lags, and a slot freed by a job reported done here would stay taken until
   * the peer's next report (git's mesh build: the next job placed 80-250 ms after the done,
   * with every slot of the peer idle meanwhile).
   */
  private busy(state: PeerState): number {
    return state.assignedTotal + state.foreign;
  }

  /** The decision for a request now, or undefined to wait for a slot. */
  private decide(request: PlacementRequest): Decision | undefined {
    const now = this.options.now();
    let best: { state: PeerState; finish: number; holder: boolean } | undefined;
    let bestQueued: typeof best;
    /** the earliest finish on a holder that is full now: waiting for it may beat a far peer */
    let waitingFinish = Infinity;
    let anyCandidate = false;
    for (const state of this.peers.values()) {
      const info = state.info;
      if (info.slots === 0 || info.arch !== request.toolchain.arch || info.os !== request.toolchain.os) continue;
      if (request.skip?.includes(info.id)) continue;
      const holder = state.holds.has(request.toolchain.id);
      if (!holder) {
        const until = this.fetching.get(`${info.id} ${request.toolchain.id}`);
        if (until !== undefined && until > now) continue;
      }
      anyCandidate = true;
      const busy = this.busy(state);
      const speed = this.speedOf(state);
      const link = request.linkMs?.[info.id] ?? info.rttMs ?? 1;
      const full = busy >= info.slots;
      // Its next free slot comes after about one of the jobs it runs.
      if (full && holder) waitingFinish = Math.min(waitingFinish, state.outstandingMs / Math.max(1, state.assignedTotal || info.slots) + request.estimateMs / speed + link);
      if (busy >= this.capacity(state)) continue;
      // Work ahead of this job on a full peer, spread over its slots.
      const queued = full ? state.outstandingMs / Math.max(1, info.slots) : 0;
      const finish = queued + request.estimateMs / speed + link;
      if (full) {
        if (beats(holder, finish, bestQueued)) bestQueued = { state, finish, holder };
      } else if (beats(holder, finish, best)) best = { state, finish, holder };
    }
    // A peer's own queue only when every slot is taken (see capacity).
    best ??= bestQueued;
    if (request.localFree > 0) {
      const localMs = request.estimateMs / Math.max(1e-6, request.localSpeed);
      if (!best || localMs <= best.finish) return { where: 'local', reason: best ? 'local-is-faster' : 'no-free-peer' };
    }
    if (!best) return anyCandidate ? undefined : { where: 'none', reason: 'no-candidate' };
    // A far peer only when it still beats waiting for a near one (a slot frees soon).
    if (best.finish > waitingFinish && (request.linkMs?.[best.state.info.id] ?? 0) > 0) return undefined;
    // Fairness: a client holding more than its share of the mesh waits while others wait.
    if (this.waiting.some((w) => w.request.client !== request.client) && this.overShare(request.client)) return undefined;
    return this.assign(best.state, request, best.finish, best.holder ? 'fastest-finish' : 'fetches-toolchain');
  }

  /** Advertised speed, corrected by the jobs it ran, and slowed by load that is not ours
   *  (its owner building, other work): a busy laptop is a slower peer. */
  private speedOf(state: PeerState): number {
    const foreignLoad = Math.max(0, state.info.load - this.busy(state)) / Math.max(1, state.info.cores);
    return Math.max(1e-6, state.info.speed / state.slowdown / (1 + foreignLoad));
  }

  private overShare(client: string): boolean {
    const clients = new Set([client, ...this.placedPerClient.keys(), ...this.waiting.map((w) => w.request.client)]);
    return (this.placedPerClient.get(client) ?? 0) >= Math.ceil(this.slotsTotal / clients.size);
  }

  private assign(state: PeerState, request: PlacementRequest, finish: number, reason: string): Decision {
    const speed = this.speedOf(state);
    const workMs = request.estimateMs / speed;
    state.assigned.set(request.client, (state.assigned.get(request.client) ?? 0) + 1);
    state.assignedTotal++;
    state.outstandingMs += workMs;
    this.placedPerClient.set(request.client, (this.placedPerClient.get(request.client) ?? 0) + 1);
    return { where: 'peer', peer: state.info.id, reason, expectedMs: Math.max(workMs, finish), workMs };
  }

  /** Serves waiting requests while slots are free: the client with the fewest placed jobs
   *  first, its largest job first; one that fits nowhere yet does not hold up the others. */
  private dispatch(): void {
    // An answer may report a job done at once (a simulation does): dispatch again after, not inside.
    if (this.dispatching) {
      this.dispatchAgain = true;
      return;
    }
    this.dispatching = true;
    try {
      do {
        this.dispatchAgain = false;
        this.dispatchOnce();
      } while (this.dispatchAgain);
    } finally {
      this.dispatching = false;
    }
  }

  private dispatchOnce(): void {
    if (this.waiting.length === 0) return;
    const order = [...this.waiting].sort((a, b) => {
      const byClient = (this.placedPerClient.get(a.request.client) ?? 0) - (this.placedPerClient.get(b.request.client) ?? 0);
      return byClient !== 0 ? byClient : b.request.estimateMs - a.request.estimateMs;
    });
    // The dispatch order is the fairness here: decide() must not hold a request back for it.
    const waiting = this.waiting.splice(0, this.waiting.length);
    const answered = new Set<Waiting>();
    for (const w of order) {
      if (!this.anyFree()) break;
      const decision = this.decide(w.request);
      if (!decision) continue;
      answered.add(w);
      w.answer(decision);
    }
    this.waiting.push(...waiting.filter((w) => !answered.has(w)));
  }

  private anyFree(): boolean {
    for (const state of this.peers.values()) if (state.info.slots > 0 && this.busy(state) < this.capacity(state)) return true;
    return false;
  }
}
