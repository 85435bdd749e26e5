// Where a job goes when this agent places it itself (until a scheduler does): the candidate
// with a free slot, the toolchain, and the best mix of speed, load and round-trip time.
// This agent's own executor is a candidate too, without the network. Peers that failed
// twice in a row are backed off for a while (as distcc does); a peer caught returning
// different outputs is excluded for good.
import { EventEmitter } from 'node:events';
import { LIMITS } from '../../protocol/messages.js';
import type { PeerViewEntry } from '../mesh/view.js';

export const SELF = 'self';

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

  constructor(private readonly options: PlacementOptions) {
    super();
    this.setMaxListeners(0);
  }

  /** Whether a candidate has a free slot now (or, evenIfBusy, has slots at all). Without a
   *  toolchain id only this agent's executor can run the job. */
  hasCandidates(toolchain: string | undefined, skip: ReadonlySet<string> = new Set(), evenIfBusy = false): boolean {
    const selfSlots = evenIfBusy ? this.options.selfSlots() : this.options.selfFreeSlots();
    if (!skip.has(SELF) && selfSlots > 0) return true;
    if (!toolchain) return false;
    return this.peerCandidates(toolchain, skip).some((e) => evenIfBusy || this.freeOn(e) > 0);
  }

  /** Jobs a peer would still admit: LIMITS.jobsPerSlot per slot, less what it says it holds
   *  and what we have sent it since (its advert may be a moment old). */
  private freeOn(entry: PeerViewEntry): number {
    const mine = this.inflight.get(entry.peerId) ?? 0;
    const capacity = entry.advert.slots * LIMITS.jobsPerSlot;
    return Math.min(capacity - entry.advert.slotsUsed, capacity - mine);
  }

  /** Takes a slot on the best candidate with one free, or returns undefined. */
  tryPlace(toolchain: string | undefined, skip: ReadonlySet<string> = new Set()): string | undefined {
    if (!skip.has(SELF) && this.options.selfFreeSlots() > 0) return SELF;
    if (!toolchain) return undefined;
    let best: { id: string; score: number } | undefined;
    for (const entry of this.peerCandidates(toolchain, skip)) {
      const a = entry.advert;
      const free = this.freeOn(entry);
      if (free <= 0) continue;
      const score = (a.speed * (1 + free / a.slots)) / (1 + a.load / Math.max(1, a.cores)) / (1 + (entry.rttMs ?? 5) / 50);
      if (!best || score > best.score) best = { id: entry.peerId, score };
    }
    if (best) this.inflight.set(best.id, (this.inflight.get(best.id) ?? 0) + 1);
    return best?.id;
  }

  /** Waits until a candidate has a free slot; undefined when there is none at all, or time ran out. */
  async place(toolchain: string | undefined, skip: ReadonlySet<string>, waitMs: number, signal?: AbortSignal): Promise<string | undefined> {
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

  exclude(peer: string, why: string): void {
    if (peer !== SELF) this.excluded.set(peer, why);
  }

  /** Peers backed off or excluded now, for stats. */
  troubled(): { backedOff: string[]; excluded: Record<string, string> } {
    const now = Date.now();
    const backedOff = [...this.health].filter(([, h]) => h.backedOffUntil > now).map(([id]) => id);
    return { backedOff, excluded: Object.fromEntries(this.excluded) };
  }

  private peerCandidates(toolchain: string, skip: ReadonlySet<string>): PeerViewEntry[] {
    const now = Date.now();
    return this.options.peers().filter((e) => {
      if (skip.has(e.peerId) || this.excluded.has(e.peerId)) return false;
      if ((this.health.get(e.peerId)?.backedOffUntil ?? 0) > now) return false;
      return e.advert.slots > 0 && e.advert.toolchains.includes(toolchain);
    });
  }
}
