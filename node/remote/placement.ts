// Where a job goes when this agent places it itself (until a scheduler does): the candidate
// with a free slot and the best mix of speed, load and round-trip time, among the peers that
// hold the job's toolchain; when none of those has a slot, a peer of the toolchain's machine
// type that lacks it (it refuses the job and fetches the toolchain; it is not asked again
// until its advert lists it or a minute passed). This agent's own executor is a candidate
// too, without the network. Peers that failed
// twice in a row are backed off for a while (as distcc does); a peer caught returning
// different outputs is excluded for good.
import { EventEmitter } from 'node:events';
import { LIMITS } from '../../protocol/messages.js';
import type { PeerViewEntry } from '../mesh/view.js';
import type { ToolchainRef } from '../toolchains.js';

export const SELF = 'self';

/** How long a peer that said it is fetching a toolchain is left alone with it. */
const FETCH_GRACE_MS = 60_000;

export interface PlacementOptions {
  /** The live view of peers (their adverts and rtt). */
  peers: () => PeerViewEntry[];
  /** This agent's executor slots, and how many are free. It runs any compiler of its host. */
  selfSlots: () => number;
  selfFreeSlots: () => number;
  backoffMs: number;
}

interface Health {
  consecutiveFailures: number;
  backedOffUntil: number;
}

export class Placement extends EventEmitter<{ freed: [] }> {
  private readonly inflight = new Map<string, number>();
  private readonly health = new Map<string, Health>();
  private readonly excluded = new Map<string, string>();
  /** `${peer} ${toolchain}` → until when the peer is left to fetch it */
  private readonly fetching = new Map<string, number>();

  constructor(private readonly options: PlacementOptions) {
    super();
    this.setMaxListeners(0);
  }

  /** Whether a candidate has a free slot now (or, evenIfBusy, has slots at all). Without a
   *  toolchain id only this agent's executor can run the job. */
  hasCandidates(toolchain: ToolchainRef | undefined, skip: ReadonlySet<string> = new Set(), evenIfBusy = false): boolean {
    const selfSlots = evenIfBusy ? this.options.selfSlots() : this.options.selfFreeSlots();
    if (!skip.has(SELF) && selfSlots > 0) return true;
    if (!toolchain) return false;
    const { holders, fetchers } = this.peerCandidates(toolchain, skip);
    return [...holders, ...fetchers].some((e) => evenIfBusy || this.freeOn(e) > 0);
  }

  /** Jobs a peer would still admit: LIMITS.jobsPerSlot per slot, less what it says it holds
   *  and what we have sent it since (its advert may be a moment old). */
  private freeOn(entry: PeerViewEntry): number {
    const mine = this.inflight.get(entry.peerId) ?? 0;
    const capacity = entry.advert.slots * LIMITS.jobsPerSlot;
    return Math.min(capacity - entry.advert.slotsUsed, capacity - mine);
  }

  /** Takes a slot on the best candidate with one free, or returns undefined. */
  tryPlace(toolchain: ToolchainRef | undefined, skip: ReadonlySet<string> = new Set()): string | undefined {
    if (!skip.has(SELF) && this.options.selfFreeSlots() > 0) return SELF;
    if (!toolchain) return undefined;
    const { holders, fetchers } = this.peerCandidates(toolchain, skip);
    const best = this.best(holders) ?? this.best(fetchers);
    if (best) this.inflight.set(best, (this.inflight.get(best) ?? 0) + 1);
    return best;
  }

  private best(entries: PeerViewEntry[]): string | undefined {
    let best: { id: string; score: number } | undefined;
    for (const entry of entries) {
      const a = entry.advert;
      const free = this.freeOn(entry);
      if (free <= 0) continue;
      const score = (a.speed * (1 + free / a.slots)) / (1 + a.load / Math.max(1, a.cores)) / (1 + (entry.rttMs ?? 5) / 50);
      if (!best || score > best.score) best = { id: entry.peerId, score };
    }
    return best?.id;
  }

  /** Waits until a candidate has a free slot; undefined when there is none at all, or time ran out. */
  async place(toolchain: ToolchainRef | undefined, skip: ReadonlySet<string>, waitMs: number, signal?: AbortSignal): Promise<string | undefined> {
    const deadline = Date.now() + waitMs;
    for (;;) {
      const placed = this.tryPlace(toolchain, skip);
      if (placed || !this.hasCandidates(toolchain, skip, true) || Date.now() >= deadline || signal?.aborted) return placed;
      // Slots free up when one of our jobs ends or a peer's advert says so; poll as a backstop.
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, Math.min(100, Math.max(1, deadline - Date.now())));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.once('freed', done);
      });
    }
  }

  release(peer: string): void {
    if (peer === SELF) {
      this.emit('freed');
      return;
    }
    const n = (this.inflight.get(peer) ?? 1) - 1;
    if (n > 0) this.inflight.set(peer, n);
    else this.inflight.delete(peer);
    this.emit('freed');
  }

  /** A peer's advert changed: waiting placements look again. */
  peersChanged(): void {
    this.emit('freed');
  }

  succeeded(peer: string): void {
    this.health.delete(peer);
  }

  /** Counts a failure; the second in a row backs the peer off. Returns true if it did. */
  failed(peer: string): boolean {
    if (peer === SELF) return false;
    const h = this.health.get(peer) ?? { consecutiveFailures: 0, backedOffUntil: 0 };
    h.consecutiveFailures++;
    const backOff = h.consecutiveFailures >= 2;
    if (backOff) {
      h.backedOffUntil = Date.now() + this.options.backoffMs;
      h.consecutiveFailures = 0;
    }
    this.health.set(peer, h);
    return backOff;
  }

  /** The peer refused a job because it is fetching the toolchain first. */
  fetchingToolchain(peer: string, toolchain: string): void {
    this.fetching.set(`${peer} ${toolchain}`, Date.now() + FETCH_GRACE_MS);
  }

  exclude(peer: string, why: string): void {
    if (peer !== SELF) this.excluded.set(peer, why);
  }

  /** Peers backed off or excluded now, for stats. */
  troubled(): { backedOff: string[]; excluded: Record<string, string> } {
    const now = Date.now();
    const backedOff = [...this.health].filter(([, h]) => h.backedOffUntil > now).map(([id]) => id);
    return { backedOff, excluded: Object.fromEntries(this.excluded) };
  }

  /** Peers that may run the job: those that hold its toolchain, and those of the same
   *  machine type that could fetch it. */
  private peerCandidates(toolchain: ToolchainRef, skip: ReadonlySet<string>): { holders: PeerViewEntry[]; fetchers: PeerViewEntry[] } {
    const now = Date.now();
    const holders: PeerViewEntry[] = [];
    const fetchers: PeerViewEntry[] = [];
    for (const e of this.options.peers()) {
      if (skip.has(e.peerId) || this.excluded.has(e.peerId) || e.advert.slots === 0) continue;
      if ((this.health.get(e.peerId)?.backedOffUntil ?? 0) > now) continue;
      if (e.advert.arch !== toolchain.arch || e.advert.os !== toolchain.os) continue;
      if (e.advert.toolchains.includes(toolchain.id)) {
        holders.push(e);
        continue;
      }
      const key = `${e.peerId} ${toolchain.id}`;
      const until = this.fetching.get(key);
      if (until !== undefined && until > now) continue;
      if (until !== undefined) this.fetching.delete(key);
      fetchers.push(e);
    }
    return { holders, fetchers };
  }
}
