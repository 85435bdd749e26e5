// Which agent is the scheduler, decided by every agent alike from the adverts it holds
// (DESIGN.md: deterministic over live membership, with leases and terms).
//
// - Rank: the highest protocol version first, then the longest-running agent (its advert's
//   startedAt), then the smallest peer id. Only agents whose adverts speak of elections count.
// - The scheduler claims a term in its own advert with a lease (LEASE_MS, renewed by every
//   advert it sends: heartbeats come each second). Everyone follows the valid claim with the
//   highest term; between equal terms (a partition healing) the better-ranked claimant wins
//   and the other steps down, so the mesh ends with one scheduler again.
// - Without a valid claim (the scheduler left the view or its lease ran out), the best-ranked
//   live agent claims the next term (one above the highest term anyone reported). If it does
//   not claim in time (it cannot see the others, say), the next one in rank does.
// - Terms only go up. A claim is never preempted by a better-ranked newcomer: stability.
import type { Advert } from '../../protocol/messages.js';

export const LEASE_MS = 2500;
/** How long the best candidate has to claim before the next one in rank does. */
const CLAIM_GRACE_MS = 1500;

export interface Candidate {
  peerId: string;
  protocolVersion: number;
  startedAt: number;
}

export interface ElectionState {
  term: number;
  /** the scheduler's peer id, undefined while there is none */
  scheduler?: string;
}

/** Orders candidates: better first. */
export function compareRank(a: Candidate, b: Candidate): number {
  if (a.protocolVersion !== b.protocolVersion) return b.protocolVersion - a.protocolVersion;
  if (a.startedAt !== b.startedAt) return a.startedAt - b.startedAt;
  return a.peerId < b.peerId ? -1 : a.peerId > b.peerId ? 1 : 0;
}

interface Claim {
  candidate: Candidate;
  term: number;
  /** local clock */
  until: number;
}

export interface LivePeer {
  advert: Advert;
  /** local clock when its latest advert arrived */
  lastSeen: number;
}

export class Election {
  private term = 0;
  private scheduler: string | undefined;
  /** our own lease, when we are the scheduler */
  private leaseUntil = 0;
  private leaderlessSince: number | undefined;

  constructor(private readonly self: Candidate) {}

  state(): ElectionState {
    return { term: this.term, ...(this.scheduler ? { scheduler: this.scheduler } : {}) };
  }

  get isScheduler(): boolean {
    return this.scheduler === this.self.peerId;
  }

  /** What our advert says: the term we follow, and our lease if we are the scheduler. */
  advertised(now: number): NonNullable<Advert['election']> {
    return { term: this.term, scheduler: this.scheduler ?? '', leaseMs: this.isScheduler ? Math.max(0, Math.round(this.leaseUntil - now)) : 0 };
  }

  /**
   * Re-decides from the live peers (their latest adverts); returns true when the scheduler
   * or the term changed (our advert should go out at once).
   */
  update(peers: readonly LivePeer[], now: number): boolean {
    const before = `${this.term} ${this.scheduler}`;
    const candidates: Candidate[] = [this.self];
    const claims: Claim[] = [];
    let highestTerm = this.term;
    for (const { advert, lastSeen } of peers) {
      if (!advert.election || advert.startedAt === undefined) continue;
      const candidate = { peerId: advert.peerId, protocolVersion: advert.protocolVersion, startedAt: advert.startedAt };
      candidates.push(candidate);
      highestTerm = Math.max(highestTerm, advert.election.term);
      const e = advert.election;
      if (e.scheduler === advert.peerId && e.leaseMs > 0 && lastSeen + e.leaseMs > now) claims.push({ candidate, term: e.term, until: lastSeen + e.leaseMs });
    }
    if (this.isScheduler) {
      // Renewed here: every advert we send carries the lease from now.
      this.leaseUntil = now + LEASE_MS;
      claims.push({ candidate: this.self, term: this.term, until: this.leaseUntil });
    }
    claims.sort((a, b) => b.term - a.term || compareRank(a.candidate, b.candidate));
    const winner = claims[0];
    if (winner) {
      this.term = Math.max(this.term, winner.term);
      this.scheduler = winner.candidate.peerId;
      this.leaderlessSince = undefined;
    } else {
      this.scheduler = undefined;
      this.leaderlessSince ??= now;
      candidates.sort(compareRank);
      // The best candidate claims; if it has not after a grace period, the next one may, and so on.
      const passed = Math.floor((now - this.leaderlessSince) / CLAIM_GRACE_MS);
      const turn = candidates[Math.min(passed, candidates.length - 1)]!;
      const mine = turn.peerId === this.self.peerId || candidates.slice(0, passed + 1).some((c) => c.peerId === this.self.peerId);
      if (mine) {
        this.term = highestTerm + 1;
        this.scheduler = this.self.peerId;
        this.leaseUntil = now + LEASE_MS;
        this.leaderlessSince = undefined;
      }
    }
    return before !== `${this.term} ${this.scheduler}`;
  }
}
